import {randomUUID} from 'node:crypto';
import {STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders} from 'node:http';
import type {Duplex} from 'node:stream';
import {setTimeout as sleep} from 'node:timers/promises';
import type {FastifyReply} from 'fastify';
import {WebSocketServer} from 'ws';
import {TacosError} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {ServerMetrics} from '../../server-kit/metrics.js';
import {validRequestId} from '../../server-kit/request-id.js';
import type {RequestLimiter} from '../../server-kit/http/rate-limit.js';
import {errorAnswer, shuttingDown, type HttpServer} from '../../server-kit/http/server.js';
import {CLOSE, EventStreamChannel, LiveChannel, WebSocketChannel} from './channel.js';
import type {LiveMetrics} from './live-metrics.js';

export interface LiveSocketSettings {
  /** A WebSocket is pinged (an SSE stream gets a comment) this often; one that missed the last pong is dropped. */
  pingIntervalMs: number;
  /** Live sockets (WebSocket and SSE) one process holds; more are refused with 503. */
  maxSockets: number;
  /** How long an EventSource waits before it reconnects (SSE `retry:`). */
  sseRetryMs: number;
}

export const DEFAULT_LIVE_SOCKET_SETTINGS = {pingIntervalMs: 30_000, sseRetryMs: 2000};

/**
 * A live socket is a connection too, under SERVER_MAX_CONNECTIONS (which drops what is over it at
 * once): by default live sockets may take 80 % of it, so that they are refused clearly (503) while
 * requests still get in.
 */
export const LIVE_SHARE_OF_CONNECTIONS = 0.8;

/** One client's request for a live stream, whichever way it came. */
export interface LiveRequest {
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  requestId: string;
  /** WebSocket only: the client's first message, once upgraded (for a token kept out of the URL). */
  firstMessage?: (timeoutMs: number) => Promise<string>;
}

/** A live stream served both as a WebSocket and as Server-Sent Events. */
export interface LiveRoute {
  wsPath: string;
  ssePath: string;
  /**
   * Starts feeding `channel`: it sets `channel.source` before its first await (so a client that
   * leaves meanwhile stops it), and settles once the stream is accepted, or throws the refusal (a
   * TacosError, answered as the REST routes answer it, before any upgrade).
   */
  open(request: LiveRequest, channel: LiveChannel): Promise<void>;
  /** The refusal counted (gateway_refusals_total{door="live"}) when open() refuses for its cap of streams. */
  capReason: 'streams_per_token' | 'streams_per_user';
}

export interface LiveServerOptions {
  settings: LiveSocketSettings;
  logger: Logger;
  metrics: ServerMetrics;
  liveMetrics: LiveMetrics;
  /** CORS_ALLOW_ORIGINS: a browser's WebSocket from another origin is refused (browsers do not apply CORS to it). */
  corsOrigins: string[];
  /** The REST door's per-client limit, for WebSocket upgrades too (SSE requests pass fastify's hook). */
  rateLimiter?: RequestLimiter;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx would otherwise hold the events in its buffer.
  'x-accel-buffering': 'no',
};

const ignore = () => undefined;

/**
 * The live routes of the HTTP port: WebSockets (`ws`, on the server's 'upgrade' event, so no
 * fastify request is kept per socket) and SSE responses (fastify routes, hijacked once accepted).
 * It bounds what clients hold: a cap of sockets per process, one ping round for all sockets (no
 * timer per socket) that drops dead peers, and a stop that sends every socket its close.
 */
export class LiveServer {
  private readonly channels = new Set<LiveChannel>();
  private readonly websockets = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    clientTracking: false,
    // Clients send nothing but control frames (and, for the user streams, a token).
    maxPayload: 8192,
  });
  private readonly wsRoutes = new Map<string, LiveRoute>();
  private readonly pinger: NodeJS.Timeout;
  private closing = false;
  private emptied?: () => void;
  private readonly forget = (channel: LiveChannel) => {
    this.channels.delete(channel);
    if (this.channels.size === 0) this.emptied?.();
  };

  constructor(
    app: HttpServer,
    routes: LiveRoute[],
    private readonly options: LiveServerOptions,
  ) {
    for (const route of routes) {
      this.wsRoutes.set(route.wsPath, route);
      app.get(route.ssePath, (request, reply) => this.openEventStream(route, request.raw, reply));
    }
    app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(request, socket, head);
    });
    this.pinger = setInterval(() => this.pingAll(), options.settings.pingIntervalMs);
    this.pinger.unref();
  }

  /**
   * Sends every socket its close (WebSocket 1001 going away, SSE the end of the response) and
   * waits for them to go, at most `graceMs`; those left then are dropped.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.pinger);
    const emptied = new Promise<void>((resolve) => (this.emptied = resolve));
    if (this.channels.size === 0) this.emptied?.();
    for (const channel of this.channels) channel.abort(CLOSE.goingAway, 'the gateway is stopping');
    const inTime = await Promise.race([emptied.then(() => true), sleep(graceMs, false, {ref: false})]);
    if (!inTime) for (const channel of this.channels) channel.terminate();
    this.websockets.close();
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', ignore);
    const requestId = validRequestId(request.headers['x-request-id']) ?? randomUUID();
    const url = new URL(request.url ?? '/', 'http://gateway');
    let channel: WebSocketChannel | undefined;
    try {
      const route = this.wsRoutes.get(url.pathname.replace(/(.)\/$/, '$1'));
      if (!route) throw new TacosError(`No WebSocket at ${url.pathname}.`, {code: 'NOT_FOUND'});
      if (request.headers.upgrade?.toLowerCase() !== 'websocket' || !request.headers['sec-websocket-key']) {
        throw new TacosError('Only WebSocket upgrades are served here.', {code: 'INVALID_ARGUMENT'});
      }
      this.checkOrigin(request.headers);
      const limited = await this.options.rateLimiter?.check(request);
      if (limited?.refusal) throw limited.refusal;
      const opened = new WebSocketChannel(this.options.liveMetrics.byKind.ws, this.forget);
      channel = opened;
      this.admit(opened);
      socket.once('close', () => opened.closedBySocket());
      const firstMessage = (timeoutMs: number) => opened.firstMessage(timeoutMs);
      await this.openRoute(route, {query: url.searchParams, headers: request.headers, requestId, firstMessage}, opened);
      if (this.closing) throw shuttingDown();
      if (socket.destroyed) return;
      this.websockets.handleUpgrade(request, socket, head, (websocket) => {
        websocket.on('error', ignore);
        opened.attach(websocket);
      });
    } catch (error) {
      channel?.closedBySocket();
      this.refuse(socket, error, requestId);
    }
  }

  private async openEventStream(route: LiveRoute, request: IncomingMessage, reply: FastifyReply): Promise<unknown> {
    const url = new URL(request.url ?? '/', 'http://gateway');
    // EventSource sends the id of the last event it had when it reconnects; a client may also name it.
    const lastEventId = header(request.headers['last-event-id']) ?? url.searchParams.get('last_event_id') ?? undefined;
    const channel = new EventStreamChannel(this.options.liveMetrics.byKind.sse, this.forget, lastEventId);
    this.admit(channel);
    reply.raw.once('close', () => channel.closedBySocket());
    try {
      await this.openRoute(
        route,
        {query: url.searchParams, headers: request.headers, requestId: String(reply.request.id)},
        channel,
      );
    } catch (error) {
      channel.closedBySocket();
      throw error;
    }
    if (channel.nothingToSend) {
      // EventSource reconnects after a stream that ends, but not after a 204.
      channel.closedBySocket();
      return reply.code(204).send();
    }
    reply.hijack();
    if (channel.closed) return;
    // The request id and CORS headers fastify's hooks set, with the stream's own.
    reply.raw.writeHead(200, {...(reply.getHeaders() as OutgoingHttpHeaders), ...SSE_HEADERS});
    reply.raw.write(`retry: ${this.options.settings.sseRetryMs}\n\n`);
    channel.attach(reply.raw);
  }

  /** Counts the channel in, or refuses it: the process holds as many live sockets as allowed, or is stopping. */
  private admit(channel: LiveChannel): void {
    if (this.closing) {
      channel.closedBySocket();
      throw shuttingDown();
    }
    this.channels.add(channel);
    if (this.channels.size > this.options.settings.maxSockets) {
      channel.closedBySocket();
      this.options.metrics.refusals.inc({door: 'live', reason: 'socket_cap'});
      throw new TacosError(
        `This gateway process holds ${this.options.settings.maxSockets} live sockets, the most LIVE_MAX_SOCKETS allows.`,
        {
          code: 'UNAVAILABLE',
          hint: 'Retry shortly (another instance may have room), or poll GET /api/v1/queue/status.',
        },
      );
    }
  }

  /** A browser's WebSocket from an origin CORS_ALLOW_ORIGINS does not list (or another site, without CORS) is refused. */
  private checkOrigin(headers: IncomingHttpHeaders): void {
    const origin = header(headers.origin);
    if (origin === undefined) return;
    const allowed = this.options.corsOrigins;
    if (allowed.includes('*') || allowed.includes(origin)) return;
    if (headers.host !== undefined && (origin === `http://${headers.host}` || origin === `https://${headers.host}`)) {
      return;
    }
    throw new TacosError(`WebSockets from ${origin} are not allowed here (CORS_ALLOW_ORIGINS).`, {code: 'FORBIDDEN'});
  }

  private async openRoute(route: LiveRoute, request: LiveRequest, channel: LiveChannel): Promise<void> {
    try {
      await route.open(request, channel);
    } catch (error) {
      if (error instanceof TacosError && error.code === 'RATE_LIMITED') {
        this.options.metrics.refusals.inc({door: 'live', reason: route.capReason});
      }
      throw error;
    }
  }

  /** Refuses an upgrade with the REST error envelope and status, and closes the connection. */
  private refuse(socket: Duplex, error: unknown, requestId: string): void {
    const {status, body} = errorAnswer(this.options.logger, error, requestId);
    const text = JSON.stringify(body);
    if (!socket.writable) return void socket.destroy();
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
      () => socket.destroy(),
    );
  }

  /** One round for every socket: a peer that did not answer the last ping (or take the last write) is dropped. */
  private pingAll(): void {
    for (const channel of this.channels) if (!channel.ping()) channel.terminate();
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
