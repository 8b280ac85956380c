import {fromJson, toBinary, type Registry} from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {Pool} from 'undici';
import {errorMessage} from '../errors.js';
import {fillTemplate, type GrpcRequestSpec, type HttpRequestSpec, type RequestSpec} from './scenarios.js';

/** How one request ended: OK, or the code it is counted under (`503`, `UNAVAILABLE`, `ECONNREFUSED`, `TIMEOUT`). */
export interface Outcome {
  ok: boolean;
  code: string;
  /** What answered, for the check before the load (read only when asked for). */
  detail?: string;
}

/** Sends one kind of request over a fixed set of connections; used by the load threads and by the check before the load. */
export interface LoadClient {
  /** `sequence` numbers the request (or tags it); `lane` picks the connection (gRPC channel) it goes over. */
  send(sequence: number | string, lane: number, withDetail?: boolean): Promise<Outcome>;
  close(): void;
}

/** `registry` (the contracts) is needed for gRPC only. */
export function createLoadClient(spec: RequestSpec, connections: number, timeoutMs: number, registry?: Registry): LoadClient {
  if (spec.kind === 'http') return httpClient(spec, connections, timeoutMs);
  if (!registry) throw new Error('a gRPC load client needs the contracts');
  return grpcClient(spec, connections, timeoutMs, registry);
}

const DETAIL_CHARS = 300;

/** HTTP/1.1 with keep-alive, one request in flight per connection. */
function httpClient(spec: HttpRequestSpec, connections: number, timeoutMs: number): LoadClient {
  const pool = new Pool(spec.origin, {connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: timeoutMs});
  const template = spec.bodyTemplate;
  return {
    async send(sequence, _lane, withDetail = false) {
      try {
        const response = await pool.request({
          method: spec.method,
          path: spec.path,
          headers: spec.headers,
          body: template === undefined ? undefined : fillTemplate(template, sequence),
        });
        let detail: string | undefined;
        if (withDetail) detail = (await response.body.text()).slice(0, DETAIL_CHARS);
        else await response.body.dump();
        return {ok: response.statusCode === spec.okStatus, code: String(response.statusCode), detail};
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

/** The request message of a gRPC run, encoded with the contracts. */
export function encodeGrpcRequest(registry: Registry, spec: GrpcRequestSpec, sequence: number | string): Uint8Array {
  const schema = registry.getMessage(spec.requestType);
  if (!schema) throw new Error(`${spec.requestType} is not in the contracts`);
  return toBinary(schema, fromJson(schema, JSON.parse(fillTemplate(spec.requestTemplate, sequence))));
}

const passBytes = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const keepBytes = (bytes: Buffer) => bytes;

/**
 * Channels with their own subchannel pool each, so N channels are N HTTP/2 connections; requests are
 * encoded here and answers are not decoded (only the status counts).
 */
function grpcClient(spec: GrpcRequestSpec, channels: number, timeoutMs: number, registry: Registry): LoadClient {
  const clients = Array.from({length: channels}, () => new grpc.Client(spec.address, grpc.credentials.createInsecure(), {'grpc.use_local_subchannel_pool': 1}));
  return {
    send(sequence, lane) {
      const request = encodeGrpcRequest(registry, spec, sequence);
      return new Promise((resolve) => {
        clients[lane % channels].makeUnaryRequest(spec.path, passBytes, keepBytes, request, new grpc.Metadata(), {deadline: Date.now() + timeoutMs}, (error) => {
          if (!error) resolve({ok: true, code: 'OK'});
          else resolve({ok: false, code: grpc.status[error.code] ?? String(error.code), detail: error.details});
        });
      });
    },
    close: () => clients.forEach((client) => client.close()),
  };
}
