import type {UntypedServiceImplementation} from '@grpc/grpc-js';
import {Counter} from 'prom-client';
import {parseDurationMs} from '../config.js';
import {TacosError, usageError} from '../errors.js';
import {loadContractSet} from '../contracts.js';
import {requestIdOf, unary} from '../server-kit/grpc/handlers.js';
import {observeInterceptor} from '../server-kit/grpc/interceptors.js';
import {methodCodec} from '../server-kit/grpc/json-codec.js';
import {packageDefinition, startGrpcServer} from '../server-kit/grpc/server.js';
import {createStatusEncoder} from '../server-kit/grpc/status-details.js';
import {callerSignal, closeHttpServer, createHttpServer} from '../server-kit/http/server.js';
import {accessLogger, type Logger} from '../logging.js';
import {ServerMetrics} from '../server-kit/metrics.js';
import {listenHttp} from '../server-kit/http/listen.js';
import {DOORS, faultDoorOf, type FaultDoor, type Faults} from './faults.js';
import type {FaultSettings, MockCallContext, MockDefinition} from './mock-definition.js';

/** What a stopping mock gives calls in flight before it drops them (its injected delays included). */
const STOP_GRACE_MS = 2000;

export interface MockServerOptions {
  definition: MockDefinition;
  host: string;
  httpPort: number;
  grpcPort: number;
  faults: Faults;
  logger: Logger;
}

export interface RunningMock {
  httpPort: number;
  grpcPort: number;
  faults: Faults;
  /** Stops both doors and the mock's timers; safe twice. */
  close(): Promise<void>;
}

/**
 * Serves a mock over gRPC and over HTTP/JSON with the same handlers: its REST routes, plus
 * `POST /<package.Service>/<Method>` for any method. Faults are set per door; every call is
 * counted by protocol and method (mock_calls_total).
 */
export async function startMockServer(options: MockServerOptions): Promise<RunningMock> {
  const {definition, faults, logger} = options;
  const contracts = await loadContractSet();
  const loaded = packageDefinition();
  const metrics = new ServerMetrics();
  const calls = new Counter({
    name: 'mock_calls_total',
    help: 'Calls the mock served, by protocol and method.',
    labelNames: ['protocol', 'service', 'method'] as const,
    registers: [metrics.registry],
  });
  const encode = createStatusEncoder(contracts.registry, logger);

  // Aborted first thing on close(): calls sleeping on injected latency fail UNAVAILABLE at once
  // instead of holding the shutdown for the whole latency.
  const closing = new AbortController();
  const invoke = async (
    service: string,
    method: string,
    request: object,
    context: MockCallContext,
  ): Promise<object> => {
    calls.inc({protocol: context.protocol, service, method});
    await faults.apply(context.protocol, context.signal, closing.signal);
    return definition.services[service][method](request, context);
  };

  const http = createHttpServer({logger, metrics, bodyLimitBytes: 1_048_576, notReadyReason: async () => undefined});
  for (const [service, handlers] of Object.entries(definition.services)) {
    for (const method of Object.keys(handlers)) {
      const codec = methodCodec(contracts.registry, loaded, service, method);
      const routes = [
        {verb: 'POST' as const, path: `/${service}/${method}`},
        ...definition.routes.filter((route) => route.service === service && route.method === method),
      ];
      for (const route of routes) {
        http.route({
          method: route.verb,
          url: route.path,
          handler: async (request, reply) => {
            const message = codec.requestFromHttp(
              request.params as Record<string, string>,
              request.query as Record<string, unknown>,
              request.body,
            );
            const response = await invoke(service, method, message, {
              protocol: 'http',
              signal: callerSignal(reply),
              requestId: request.id,
            });
            return codec.responseToJson(response);
          },
        });
      }
    }
  }
  http.get('/admin/faults', async () => faultsBody(faults));
  http.put('/admin/faults', async (request) => {
    let door: FaultDoor;
    try {
      const asked = faultChangeOf(request.body);
      door = asked.door;
      faults.update(asked.change, door);
    } catch (error) {
      // Every refusal says what to send: the admin route has no other documentation at hand.
      throw error instanceof TacosError ? usageError(`${error.message} ${FAULTS_SEND}`) : error;
    }
    logger.info({door, ...faultsBody(faults)}, 'faults changed');
    return faultsBody(faults);
  });

  const grpcServices = Object.entries(definition.services).map(([service, handlers]) => {
    const implementation: UntypedServiceImplementation = {};
    for (const method of Object.keys(handlers)) {
      implementation[method] = unary(encode, (request: object, metadata, cancellation) =>
        invoke(service, method, request, {protocol: 'grpc', signal: cancellation(), requestId: requestIdOf(metadata)}),
      );
    }
    return {name: service, implementation};
  });

  let grpc: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
  const stopAll = async () => {
    closing.abort();
    definition.close();
    await Promise.allSettled([closeHttpServer(http, STOP_GRACE_MS), grpc?.close(STOP_GRACE_MS)]);
  };
  try {
    await listenHttp(http, options.host, options.httpPort, `${definition.name.toUpperCase()}_HTTP_PORT`);
    grpc = await startGrpcServer({
      host: options.host,
      port: options.grpcPort,
      contracts,
      services: grpcServices,
      interceptors: [observeInterceptor(metrics, accessLogger(logger))],
      portVariable: `${definition.name.toUpperCase()}_GRPC_PORT`,
    });
  } catch (error) {
    await stopAll();
    throw error;
  }
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : options.httpPort;
  logger.info(
    {http: `http://${options.host}:${httpPort}`, grpc: `grpc://${options.host}:${grpc.port}`, ...faultsBody(faults)},
    `${definition.name} mock listening`,
  );
  let stopped: Promise<void> | undefined;
  return {httpPort, grpcPort: grpc.port, faults, close: () => (stopped ??= stopAll())};
}

/**
 * Each door's settings, and at the top level the value both doors share (the shape from before
 * faults were per door), or null where they differ.
 */
function faultsBody(faults: Faults) {
  const current = faults.current;
  const shared = <T>(pick: (settings: FaultSettings) => T): T | null =>
    pick(current.grpc) === pick(current.http) ? pick(current.grpc) : null;
  const body = (settings: FaultSettings) => ({latency_ms: settings.latencyMs, error_rate: settings.errorRate});
  return {
    latency_ms: shared((door) => door.latencyMs),
    error_rate: shared((door) => door.errorRate),
    doors: Object.fromEntries(DOORS.map((door) => [door, body(current[door])])),
  };
}

const FAULTS_SEND =
  'Send a JSON object such as {"latency": "2s", "error_rate": 0.1, "door": "grpc"} (door: grpc, http or both; default both).';
const FAULTS_KEYS = ['latency', 'error_rate', 'door'];

/** The body of PUT /admin/faults: any of latency, error_rate and door (default both). */
function faultChangeOf(body: unknown): {door: FaultDoor; change: Partial<FaultSettings>} {
  if (body === undefined || body === null) return {door: 'both', change: {}};
  if (typeof body !== 'object' || Array.isArray(body)) throw usageError('The body is not a JSON object.');
  const unknown = Object.keys(body).filter((key) => !FAULTS_KEYS.includes(key));
  if (unknown.length > 0) throw usageError(`Unknown field ${unknown.map((key) => `"${key}"`).join(', ')}.`);
  const {latency, error_rate: errorRate, door} = body as {latency?: unknown; error_rate?: unknown; door?: unknown};
  return {
    door: door === undefined ? 'both' : faultDoorOf(door),
    change: {
      ...(latency === undefined ? {} : {latencyMs: latencyOf(latency)}),
      ...(errorRate === undefined ? {} : {errorRate: rateOf(errorRate)}),
    },
  };
}

function rateOf(value: unknown): number {
  const rate = typeof value === 'number' || typeof value === 'string' ? Number(value) : NaN;
  if (!(rate >= 0 && rate <= 1)) throw usageError(`error_rate ${JSON.stringify(value)} is not a number from 0 to 1.`);
  return rate;
}

/** `2s`, `150ms`, or a number of milliseconds. */
function latencyOf(value: unknown): number {
  const ms = typeof value === 'number' ? value : parseDurationMs(String(value));
  if (ms === undefined || !Number.isFinite(ms))
    throw usageError(`latency "${String(value)}" is not a duration such as 50ms or 2s.`);
  return ms;
}
