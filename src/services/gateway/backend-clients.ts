import {BackendClient} from '../backends/backend-client.js';
import {PAYMENT_ROUTES, RESERVATION_ROUTES, type BackendRoute} from '../backends/routes.js';
import {GrpcTransport, HttpTransport} from '../backends/transports.js';
import type {ContractSet} from '../contracts.js';
import {packageDefinition} from '../server-kit/grpc/server.js';
import type {Logger} from '../logging.js';
import type {BackendSettings, GatewayConfig} from './config.js';

/**
 * The gateway's clients of reservation and payment: over HTTP when GRPC_ENABLED is false; with it,
 * GRPC_TRAFFIC_PERCENT of the calls over gRPC and the rest over HTTP.
 */
export function createBackendClients(config: GatewayConfig, contracts: ContractSet, logger: Logger) {
  const definition = packageDefinition();
  const client = (name: string, settings: BackendSettings, routes: BackendRoute[]) =>
    new BackendClient(
      {
        name,
        timeoutMs: settings.timeoutMs,
        grpcPercent: config.grpcEnabled ? config.grpcTrafficPercent : 0,
        breakerFailures: config.breaker.failures,
        breakerCooldownMs: config.breaker.cooldownMs,
      },
      {
        grpc: config.grpcEnabled
          ? new GrpcTransport(name, settings.grpcAddress, definition, contracts.registry, config.breaker.cooldownMs)
          : undefined,
        http: new HttpTransport(name, settings.httpBaseUrl, routes, definition, contracts.registry),
      },
      logger,
    );
  return {
    reservation: client('reservation', config.backends.reservation, RESERVATION_ROUTES),
    payment: client('payment', config.backends.payment, PAYMENT_ROUTES),
  };
}
