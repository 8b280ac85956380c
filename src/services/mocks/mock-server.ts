import type {UntypedServiceImplementation} from '@grpc/grpc-js';
import {Counter} from 'prom-client';
import {parseDurationMs} from '../config.js';
import {usageError} from '../errors.js';
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
import type {Faults} from './faults.js';
import type {MockCallContext, MockDefinition} from './mock-definition.js';

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
 * `POST /<package.Service>/<Method>` for any method. Faults apply to both doors; every call is
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
    await faults.apply(context.signal, closing.signal);
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
    const body = (request.body ?? {}) as {latency?: unknown; error_rate?: unknown};
    faults.update({
      ...(body.latency === undefined ? {} : {latencyMs: latencyOf(body.latency)}),
      ...(body.error_rate === undefined ? {} : {errorRate: Number(body.error_rate)}),
    });
    logger.info(faultsBody(faults), 'faults changed');
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

function faultsBody(faults: Faults) {
  const {latencyMs, errorRate} = faults.current;
  return {latency_ms: latencyMs, error_rate: errorRate};
}

/** `2s`, `150ms`, or a number of milliseconds. */
function latencyOf(value: unknown): number {
  const ms = typeof value === 'number' ? value : parseDurationMs(String(value));
  if (ms === undefined || !Number.isFinite(ms))
    throw usageError(`latency "${String(value)}" is not a duration such as 50ms or 2s.`);
  return ms;
}
