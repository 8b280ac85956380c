import type {FileRegistry, JsonObject} from '@bufbuild/protobuf';
import {Metadata, status as GrpcStatus, type ServiceError} from '@grpc/grpc-js';
import {PaymentServiceClient} from '../../generated/contracts/payment/v1/PaymentServiceClient.js';
import {InventoryServiceClient} from '../../generated/contracts/reservation/v1/InventoryServiceClient.js';
import {ReservationServiceClient} from '../../generated/contracts/reservation/v1/ReservationServiceClient.js';
import {GeneratedClient, type CallOptions, type ClientSettings} from '../../generated/contracts/runtime.js';
import type {PackageDefinition} from '@grpc/proto-loader';
import {Pool} from 'undici';
import {methodCodec, type MethodCodec} from '../server-kit/grpc/json-codec.js';
import type {CallContext} from './backend-client.js';
import type {BackendMetrics} from './backend-metrics.js';
import {callerGone, fromGrpcError, fromHttpError, transportError, undecodableAnswer} from './errors.js';
import {routeRequest, type BackendRoute} from './routes.js';
import {INVENTORY_SERVICE, PAYMENT_SERVICE, RESERVATION_SERVICE} from '../service-names.js';

export type Protocol = 'grpc' | 'http';

/** One way to reach a backend: a method call with a deadline, errors as TacosErrors. */
export interface Transport {
  readonly protocol: Protocol;
  call(service: string, method: string, request: object, timeoutMs: number, context: CallContext): Promise<object>;
  close(): Promise<void>;
}

/** The generated clients (tacos gen, template ts-grpc-js) of the services the gateway calls. */
const GENERATED_CLIENTS: Record<string, new (settings: ClientSettings) => GeneratedClient> = {
  [RESERVATION_SERVICE]: ReservationServiceClient,
  [INVENTORY_SERVICE]: InventoryServiceClient,
  [PAYMENT_SERVICE]: PaymentServiceClient,
};

/** gRPC over one channel to the backend's address, through the generated typed clients. */
export class GrpcTransport implements Transport {
  readonly protocol = 'grpc';
  private readonly clients = new Map<string, GeneratedClient>();

  constructor(
    private readonly backend: string,
    private readonly address: string,
    private readonly definition: PackageDefinition,
    private readonly registry: FileRegistry,
    /** Reconnect attempts never wait longer than the breaker's cool-down (grpc-js would wait up to 120 s). */
    private readonly maxReconnectBackoffMs: number,
    private readonly metrics: BackendMetrics,
  ) {}

  async call(
    service: string,
    method: string,
    request: object,
    timeoutMs: number,
    context: CallContext,
  ): Promise<object> {
    const client = this.client(service) as unknown as Record<
      string,
      (request: object, options: CallOptions) => Promise<object>
    >;
    const metadata = new Metadata();
    metadata.set('x-request-id', context.requestId);
    const started = performance.now();
    const handled = this.metrics.grpcCall(service, method);
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const answer = await client[method](request, {timeoutMs, metadata, signal: context.signal});
      handled('OK', true, seconds());
      return answer;
    } catch (error) {
      handled(GrpcStatus[(error as Partial<ServiceError>).code ?? GrpcStatus.UNKNOWN] ?? 'UNKNOWN', false, seconds());
      throw context.signal?.aborted
        ? callerGone(this.backend)
        : fromGrpcError(this.backend, error as ServiceError, this.registry);
    }
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(service: string): GeneratedClient {
    let client = this.clients.get(service);
    if (!client) {
      const Client = GENERATED_CLIENTS[service];
      if (!Client) throw new Error(`no generated client for ${service}`);
      client = new Client({
        address: this.address,
        definition: this.definition,
        channelOptions: {
          'grpc.initial_reconnect_backoff_ms': 250,
          'grpc.max_reconnect_backoff_ms': this.maxReconnectBackoffMs,
        },
      });
      this.clients.set(service, client);
    }
    return client;
  }
}

/** HTTP/JSON over a keep-alive pool to the backend's REST routes. */
export class HttpTransport implements Transport {
  readonly protocol = 'http';
  private readonly pool: Pool;
  /** A path prefix of the base URL (a backend behind an ingress), put before every route. */
  private readonly basePath: string;
  private readonly codecs = new Map<string, MethodCodec>();

  constructor(
    private readonly backend: string,
    baseUrl: URL,
    private readonly routes: BackendRoute[],
    private readonly definition: PackageDefinition,
    private readonly registry: FileRegistry,
    private readonly metrics: BackendMetrics,
  ) {
    this.pool = new Pool(baseUrl.origin, {connections: 64, pipelining: 1});
    this.basePath = baseUrl.pathname.replace(/\/+$/, '');
  }

  async call(
    service: string,
    method: string,
    request: object,
    timeoutMs: number,
    context: CallContext,
  ): Promise<object> {
    const route = this.routes.find((candidate) => candidate.service === service && candidate.method === method);
    const codec = this.codec(service, method);
    const json = codec.requestToJson(request) as JsonObject;
    const {path, query, body} = route
      ? routeRequest(route, json)
      : {path: `/${service}/${method}`, query: new URLSearchParams(), body: json};
    const deadline = AbortSignal.timeout(timeoutMs);
    let answer: {status: number; body: unknown};
    const started = performance.now();
    const requested = (status: number) =>
      this.metrics.httpCall(this.backend, service, method, status, (performance.now() - started) / 1000);
    try {
      const response = await this.pool.request({
        method: route?.verb ?? 'POST',
        path: `${this.basePath}${path}${query.size ? `?${query.toString()}` : ''}`,
        headers: {'content-type': 'application/json', accept: 'application/json', 'x-request-id': context.requestId},
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: context.signal ? AbortSignal.any([deadline, context.signal]) : deadline,
      });
      const text = await response.body.text();
      answer = {status: response.statusCode, body: parseJson(text)};
      requested(answer.status);
    } catch (error) {
      requested(0);
      if (context.signal?.aborted) throw callerGone(this.backend);
      throw transportError(this.backend, error, deadline.aborted);
    }
    if (answer.status >= 400) throw fromHttpError(this.backend, answer.status, answer.body);
    try {
      return codec.responseFromJson(answer.body as JsonObject);
    } catch (error) {
      throw undecodableAnswer(this.backend, error);
    }
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

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}
