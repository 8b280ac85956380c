import {fromJson, toBinary, type Registry} from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  connect,
  constants as http2Constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import {Pool} from 'undici';
import {errorMessage} from '../errors.js';
import {BACKEND_ROAD_HEADER} from '../gateway/booking.js';
import {fillTemplate, type GrpcRequestSpec, type HttpRequestSpec, type RequestSpec} from './scenarios.js';

/** How one request ended: OK, or the code it is counted under (`503`, `UNAVAILABLE`, `ECONNREFUSED`, `TIMEOUT`). */
export interface Outcome {
  ok: boolean;
  code: string;
  /** What answered, for the check before the load (read only when asked for). */
  detail?: string;
  /** The X-RateLimit-Limit the gateway announced (read with the detail): its per-client limit is on. */
  rateLimit?: string;
  /** The roads of the gateway's backend calls (its x-tacos-backend-road header), when it said. */
  road?: string;
}

/** Sends one kind of request over a fixed set of connections; used by the load threads and by the check before the load. */
export interface LoadClient {
  /** `sequence` numbers the request (or tags it); `lane` picks the connection (a gRPC HTTP/2 session) it goes over. */
  send(sequence: number | string, lane: number, withDetail?: boolean): Promise<Outcome>;
  close(): void;
}

/** `registry` (the contracts) is needed for gRPC only. */
export function createLoadClient(
  spec: RequestSpec,
  connections: number,
  timeoutMs: number,
  registry?: Registry,
): LoadClient {
  if (spec.kind === 'http') return httpClient(spec, connections, timeoutMs);
  if (!registry) throw new Error('a gRPC load client needs the contracts');
  return grpcClient(spec, connections, timeoutMs, registry);
}

const DETAIL_CHARS = 300;

/** HTTP/1.1 with keep-alive, one request in flight per connection. */
function httpClient(spec: HttpRequestSpec, connections: number, timeoutMs: number): LoadClient {
  const pool = new Pool(spec.origin, {
    connections,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: timeoutMs,
  });
  const template = spec.bodyTemplate;
  // Merged once here, not per request.
  const turns = spec.headerTurns?.map((turn) => ({...spec.headers, ...turn}));
  const headersOf = (sequence: number | string) =>
    turns && typeof sequence === 'number' ? turns[sequence % turns.length] : spec.headers;
  return {
    async send(sequence, _lane, withDetail = false) {
      try {
        const response = await pool.request({
          method: spec.method,
          path: spec.path,
          headers: headersOf(sequence),
          body: template === undefined ? undefined : fillTemplate(template, sequence),
        });
        const ok = response.statusCode === spec.okStatus;
        const code = String(response.statusCode);
        const roads = response.headers[BACKEND_ROAD_HEADER];
        const road = typeof roads === 'string' ? roads : undefined;
        if (!withDetail) {
          await response.body.dump();
          return {ok, code, road};
        }
        const limit = response.headers['x-ratelimit-limit'];
        return {
          ok,
          code,
          detail: (await response.body.text()).slice(0, DETAIL_CHARS),
          rateLimit: typeof limit === 'string' ? limit : undefined,
          road,
        };
      } catch (error) {
        return {ok: false, code: connectionErrorCode(error), detail: errorMessage(error)};
      }
    },
    close: () => void pool.destroy(),
  };
}

function connectionErrorCode(error: unknown): string {
  const code = (error as {code?: string}).code ?? (error as {cause?: {code?: string}}).cause?.code;
  if (code === undefined) return 'ERROR';
  if (/TIMEOUT/.test(code)) return 'TIMEOUT';
  // undici's "other side closed" and the like: the connection broke.
  return code.startsWith('UND_ERR_') ? code.slice('UND_ERR_'.length) : code;
}

/**
 * The body of a gRPC run's request for a sequence number: the message encoded with the contracts,
 * in its 5-byte frame (not compressed, big-endian length).
 */
export function grpcRequestFrames(registry: Registry, spec: GrpcRequestSpec): (sequence: number | string) => Buffer {
  const schema = registry.getMessage(spec.requestType);
  if (!schema) throw new Error(`${spec.requestType} is not in the contracts`);
  return (sequence) => {
    const message = toBinary(schema, fromJson(schema, JSON.parse(fillTemplate(spec.requestTemplate, sequence))));
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    return frame;
  };
}

/** gRPC status names by number, for counting errors by code. */
const STATUS_NAMES = new Map(
  Object.entries(grpc.status).flatMap(([name, value]) => (typeof value === 'number' ? [[value, name] as const] : [])),
);

function statusName(value: string): string {
  return STATUS_NAMES.get(Number(value)) ?? `grpc-status ${value}`;
}

/**
 * gRPC over plain HTTP/2 sessions (node:http2), N sessions being N connections: the request framed
 * here (flag 0, 4-byte length, the message), the answer's grpc-status read from its trailers (or from
 * the headers of a trailers-only answer), the message itself not decoded. A grpc-js client cost the
 * generator about as much CPU per call as the gateway spends serving it, which made it the
 * bottleneck on a small machine; this does what h2load does, plus the status check h2load lacks.
 */
function grpcClient(spec: GrpcRequestSpec, sessions: number, timeoutMs: number, registry: Registry): LoadClient {
  const origin = `http://${spec.address}`;
  const open: Array<ClientHttp2Session | undefined> = [];
  const session = (lane: number): ClientHttp2Session => {
    const index = lane % sessions;
    let current = open[index];
    if (!current || current.closed || current.destroyed) {
      current = connect(origin);
      // A broken connection fails its streams (counted there); the next request opens a new one.
      current.on('error', () => {});
      open[index] = current;
    }
    return current;
  };
  const frameOf = grpcRequestFrames(registry, spec);
  return {
    send(sequence, lane) {
      const frame = frameOf(sequence);
      return new Promise<Outcome>((resolve) => {
        let httpStatus = 0;
        let grpcStatus: string | undefined;
        let grpcMessage = '';
        let failure: Outcome | undefined;
        const read = (fields: IncomingHttpHeaders) => {
          if (fields['grpc-status'] === undefined) return;
          grpcStatus = String(fields['grpc-status']);
          grpcMessage = decodeURIComponent(String(fields['grpc-message'] ?? ''));
        };
        let stream: ClientHttp2Stream;
        try {
          stream = session(lane).request({
            ':method': 'POST',
            ':path': spec.path,
            'content-type': 'application/grpc',
            te: 'trailers',
            'grpc-timeout': `${timeoutMs}m`,
          });
        } catch (error) {
          resolve({ok: false, code: 'UNAVAILABLE', detail: errorMessage(error)});
          return;
        }
        const timer = setTimeout(() => {
          failure = {ok: false, code: 'TIMEOUT', detail: `no answer within ${timeoutMs} ms`};
          stream.close(http2Constants.NGHTTP2_CANCEL);
        }, timeoutMs);
        stream.on('response', (headers) => {
          httpStatus = Number(headers[':status']);
          read(headers);
        });
        stream.on('trailers', read);
        stream.on('data', () => {});
        // A connection that fails or breaks is UNAVAILABLE, as every gRPC client reports it.
        stream.on('error', (error) => (failure ??= {ok: false, code: 'UNAVAILABLE', detail: errorMessage(error)}));
        stream.on('close', () => {
          clearTimeout(timer);
          if (failure) resolve(failure);
          else if (grpcStatus === '0') resolve({ok: true, code: 'OK'});
          else if (grpcStatus !== undefined) resolve({ok: false, code: statusName(grpcStatus), detail: grpcMessage});
          else
            resolve({
              ok: false,
              code: httpStatus ? String(httpStatus) : 'STREAM_CLOSED',
              detail: 'the answer had no grpc-status',
            });
        });
        stream.end(frame);
      });
    },
    close: () => open.forEach((current) => current?.close()),
  };
}
