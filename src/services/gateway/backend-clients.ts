import type {Registry} from 'prom-client';
import {BackendClient} from '../backends/backend-client.js';
import {BackendMetrics} from '../backends/backend-metrics.js';
import type {RoadPolicy} from '../backends/road-policy.js';
import {PAYMENT_ROUTES, RESERVATION_ROUTES, type BackendRoute} from '../backends/routes.js';
import {GrpcTransport, HttpTransport} from '../backends/transports.js';
import type {ContractSet} from '../contracts.js';
import {packageDefinition} from '../server-kit/grpc/server.js';
import type {Logger} from '../logging.js';
import type {BackendSettings, GatewayConfig} from './config.js';

/**
 * The gateway's clients of reservation and payment, each with both roads: the policy says which
 * share of the callers takes gRPC (0 when GRPC_ENABLED is false). The gRPC channels connect on
 * first use, so a road nobody takes costs nothing. Their metrics are registered on `registry`.
 */
export function createBackendClients(
  config: GatewayConfig,
  contracts: ContractSet,
  logger: Logger,
  policy: RoadPolicy,
  registry: Registry,
) {
  const definition = packageDefinition();
  const metrics = new BackendMetrics(registry);
  const client = (name: string, settings: BackendSettings, routes: BackendRoute[]) =>
    new BackendClient(
      {
        name,
        timeoutMs: settings.timeoutMs,
        breakerFailures: config.breaker.failures,
        breakerCooldownMs: config.breaker.cooldownMs,
      },
      {
        grpc: new GrpcTransport(
          name,
          settings.grpcAddress,
          definition,
          contracts.registry,
          config.breaker.cooldownMs,
          metrics,
        ),
        http: new HttpTransport(name, settings.httpBaseUrl, routes, definition, contracts.registry, metrics),
      },
      policy,
      metrics,
      logger,
    );
  return {
    reservation: client('reservation', config.backends.reservation, RESERVATION_ROUTES),
    payment: client('payment', config.backends.payment, PAYMENT_ROUTES),
  };
}
