import type {FileRegistry, JsonObject} from '@bufbuild/protobuf';
import {credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceDefinition, type ServiceError} from '@grpc/grpc-js';
import type {PackageDefinition} from '@grpc/proto-loader';
import {Pool} from 'undici';
import {methodCodec, type MethodCodec} from '../grpc/json-codec.js';
import {fromGrpcError, fromHttpError, transportError} from './errors.js';
import {routeRequest, type BackendRoute} from './routes.js';

export type Protocol = 'grpc' | 'http';

/** One way to reach a backend: a method call with a deadline, errors as TacosErrors. */
export interface Transport {
  readonly protocol: Protocol;
  call(service: string, method: string, request: object, timeoutMs: number, requestId: string): Promise<object>;
  close(): Promise<void>;
}

/** gRPC over one channel to the backend's address. */
export class GrpcTransport implements Transport {
  readonly protocol = 'grpc';
  private readonly clients = new Map<string, Client & Record<string, Function>>();

  constructor(
    private readonly backend: string,
    private readonly address: string,
    private readonly definition: PackageDefinition,
    private readonly registry: FileRegistry,
  ) {}

  call(service: string, method: string, request: object, timeoutMs: number, requestId: string): Promise<object> {
    const client = this.client(service);
    const metadata = new Metadata();
    metadata.set('x-request-id', requestId);
    return new Promise((resolve, reject) => {
      client[method](request, metadata, {deadline: Date.now() + timeoutMs}, (error: ServiceError | null, response: object) =>
        error ? reject(fromGrpcError(this.backend, error, this.registry)) : resolve(response),
      );
    });
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(service: string) {
    let client = this.clients.get(service);
    if (!client) {
      const Constructor = makeGenericClientConstructor(this.definition[service] as ServiceDefinition, service);
      client = new Constructor(this.address, credentials.createInsecure()) as Client & Record<string, Function>;
      this.clients.set(service, client);
    }
    return client;
  }
}

/** HTTP/JSON over a keep-alive pool to the backend's REST routes. */
export class HttpTransport implements Transport {
  readonly protocol = 'http';
  private readonly pool: Pool;
  private readonly codecs = new Map<string, MethodCodec>();

  constructor(
    private readonly backend: string,
    baseUrl: string,
    private readonly routes: BackendRoute[],
    private readonly definition: PackageDefinition,
    private readonly registry: FileRegistry,
  ) {
    this.pool = new Pool(baseUrl, {connections: 64, pipelining: 1});
  }

  async call(service: string, method: string, request: object, timeoutMs: number, requestId: string): Promise<object> {
    const route = this.routes.find((candidate) => candidate.service === service && candidate.method === method);
    const codec = this.codec(service, method);
    const json = codec.requestToJson(request) as JsonObject;
    const {path, query, body} = route ? routeRequest(route, json) : {path: `/${service}/${method}`, query: new URLSearchParams(), body: json};
    const signal = AbortSignal.timeout(timeoutMs);
    let answer: {status: number; body: unknown};
    try {
      const response = await this.pool.request({
        method: route?.verb ?? 'POST',
        path: query.size ? `${path}?${query}` : path,
        headers: {'content-type': 'application/json', accept: 'application/json', 'x-request-id': requestId},
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      answer = {status: response.statusCode, body: await response.body.json()};
    } catch (error) {
      throw transportError(this.backend, error, signal.aborted);
    }
    if (answer.status >= 400) throw fromHttpError(this.backend, answer.status, answer.body);
    return codec.responseFromJson(answer.body as JsonObject);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private codec(service: string, method: string): MethodCodec {
    const key = `${service}/${method}`;
    let codec = this.codecs.get(key);
    if (!codec) {
      codec = methodCodec(this.registry, this.definition, service, method);
      this.codecs.set(key, codec);
    }
    return codec;
  }
}
