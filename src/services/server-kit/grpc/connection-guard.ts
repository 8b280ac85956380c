import {
  constants as http2Constants,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import {createServer, type Server as NetServer, type Socket} from 'node:net';
import type {GrpcLimits, GrpcRefusal} from './limits.js';

/** Metadata key that carries a malformed grpc-timeout from the transport to the request-check interceptor. */
export const INVALID_TIMEOUT_KEY = 'x-tacos-invalid-grpc-timeout';
/** grpc-timeout as the gRPC over HTTP/2 spec writes it: 1-8 digits and a unit. */
const GRPC_TIMEOUT = /^\d{1,8}[HMSmun]$/;
const MAX_PING_STRIKES = 2;
const PROBE_EVERY_MS = 1000;

export interface GuardedListener {
  listener: NetServer;
  /** Stops the checks and destroys the sockets still open (after grpc-js has closed its sessions). */
  stop(): void;
}

interface SessionWatch {
  /** Highest stream id this session handed to grpc-js. */
  seenStreamId: number;
  probing: boolean;
  lastPingAt: number;
  pingStrikes: number;
}

/**
 * The gRPC server's own listener, in front of grpc-js's HTTP/2 server (fed through a connection
 * injector): it caps connections, drops those that do not finish the HTTP/2 handshake in time, and
 * closes sessions Node leaves half dead. A request with a header field over nghttp2's 64 KB HPACK
 * limit makes nghttp2 send GOAWAY and stop reading, yet Node neither closes the session nor reads
 * the client's FIN, so the socket sits in CLOSE-WAIT for good (Node 20, plain node:http2 too). Such a
 * session processed a stream grpc-js never saw: it is pinged, and destroyed if it cannot answer.
 */
export function guardConnections(
  http2Server: Http2Server,
  inject: (socket: Socket) => void,
  limits: Pick<GrpcLimits, 'maxConnections' | 'handshakeTimeoutMs' | 'pingTimeoutMs' | 'minPingIntervalMs'>,
  refused: (reason: GrpcRefusal) => void,
): GuardedListener {
  const handshakes = new Map<string, NodeJS.Timeout>();
  const sessions = new Map<Http2Session, SessionWatch>();
  const sockets = new Set<Socket>();
  const peerKey = (socket: {remoteAddress?: string; remotePort?: number}) =>
    `${socket.remoteAddress}|${socket.remotePort}`;

  const listener = createServer({noDelay: true}, (socket) => {
    const key = peerKey(socket);
    sockets.add(socket);
    const timer = setTimeout(() => {
      refused('handshake_timeout');
      socket.destroy();
    }, limits.handshakeTimeoutMs);
    handshakes.set(key, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      handshakes.delete(key);
      sockets.delete(socket);
    });
    // A TLS or HTTP/2 failure before a session exists shows here; the socket is destroyed after it.
    socket.on('error', () => undefined);
    inject(socket);
  });
  listener.maxConnections = limits.maxConnections;
  listener.on('drop', () => refused('connection_limit'));

  http2Server.on('session', (session: Http2Session) => {
    const watch: SessionWatch = {seenStreamId: 0, probing: false, lastPingAt: 0, pingStrikes: 0};
    sessions.set(session, watch);
    const key = session.socket ? peerKey(session.socket) : '';
    session.once('remoteSettings', () => {
      clearTimeout(handshakes.get(key));
      handshakes.delete(key);
    });
    session.on('ping', () => {
      const now = Date.now();
      if (now - watch.lastPingAt < limits.minPingIntervalMs && ++watch.pingStrikes > MAX_PING_STRIKES) {
        refused('too_many_pings');
        session.destroy(undefined, http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
      }
      watch.lastPingAt = now;
    });
    session.on('frameError', () => session.destroy());
    session.once('close', () => sessions.delete(session));
  });

  // Before grpc-js's own listener: it reads these headers in the same emit.
  http2Server.prependListener('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const watch = stream.session && sessions.get(stream.session);
    if (watch) {
      watch.seenStreamId = Math.max(watch.seenStreamId, stream.id ?? 0);
      watch.pingStrikes = 0;
    }
    stream.once('close', () => isOversizeRefusal(stream) && refused('message_too_large'));
    delete headers[INVALID_TIMEOUT_KEY];
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined && !(typeof timeout === 'string' && GRPC_TIMEOUT.test(timeout))) {
      // grpc-js would answer INTERNAL before any interceptor runs; an interceptor answers INVALID_ARGUMENT.
      delete headers['grpc-timeout'];
      headers[INVALID_TIMEOUT_KEY] = String(timeout);
    }
  });

  const probe = (session: Http2Session, watch: SessionWatch) => {
    watch.probing = true;
    const timer = setTimeout(() => {
      refused('dead_session');
      session.destroy();
    }, limits.pingTimeoutMs);
    const answered = () => {
      clearTimeout(timer);
      watch.probing = false;
    };
    try {
      if (!session.ping(answered)) throw new Error('ping refused');
    } catch {
      clearTimeout(timer);
      refused('dead_session');
      session.destroy();
    }
  };
  const prober = setInterval(() => {
    for (const [session, watch] of sessions) {
      if (session.destroyed || watch.probing) continue;
      const processed = session.state.lastProcStreamID ?? 0;
      if (processed > watch.seenStreamId) {
        watch.seenStreamId = processed;
        probe(session, watch);
      }
    }
  }, PROBE_EVERY_MS);
  prober.unref();

  return {
    listener,
    stop() {
      clearInterval(prober);
      for (const timer of handshakes.values()) clearTimeout(timer);
      handshakes.clear();
      // Connections still in their handshake have no session for grpc-js to close.
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** A stream grpc-js refused for its message size: it answers before any interceptor, so it is counted here. */
function isOversizeRefusal(stream: ServerHttp2Stream): boolean {
  const sent = stream.sentTrailers ?? stream.sentHeaders;
  return (
    Number(sent?.['grpc-status']) === 8 &&
    String(sent?.['grpc-message'] ?? '').startsWith('Received%20message%20larger')
  );
}
