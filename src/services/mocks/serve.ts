import {EnvReader, loadEnvironment, type Environment} from '../config.js';
import {createLogger, LOG_LEVELS} from '../logging.js';
import {waitForStopSignal} from '../signals.js';
import {Faults} from './faults.js';
import type {MockDefinition} from './kit.js';
import {startMockServer, type RunningMock} from './mock-server.js';
import {PAYMENT_SCENARIOS, createPaymentMock, type PaymentScenarioName} from './payment/payment-mock.js';

export {PAYMENT_SCENARIOS};
import {createReservationMock} from './reservation/reservation-mock.js';
import {loadCatalog} from './reservation/catalog.js';

export type MockName = 'reservation' | 'payment';

/** What the command line may set; anything unset comes from the environment, then the defaults. */
export interface MockOptions {
  envName?: string;
  httpPort?: number;
  grpcPort?: number;
  latencyMs?: number;
  errorRate?: number;
  /** reservation */
  catalogFile?: string;
  holdMs?: number;
  /** payment */
  scenario?: PaymentScenarioName;
  delayMs?: number;
  seed?: number;
}

const DEFAULT_PORTS: Record<MockName, {http: number; grpc: number}> = {reservation: {http: 8010, grpc: 8011}, payment: {http: 8030, grpc: 8031}};

/** Starts a mock backend on its ports (Traffic Tacos scheme: X010 REST, X011 gRPC). */
export async function startMock(name: MockName, options: MockOptions, env: Environment): Promise<RunningMock> {
  const read = new EnvReader(env);
  const prefix = name.toUpperCase();
  const logger = createLogger(name, read.oneOfValues('LOG_LEVEL', LOG_LEVELS, 'info'));
  const faults = new Faults({
    latencyMs: options.latencyMs ?? read.durationMs(`${prefix}_LATENCY`, 0),
    errorRate: options.errorRate ?? read.number(`${prefix}_ERROR_RATE`, 0),
  });
  const definition: MockDefinition =
    name === 'reservation'
      ? createReservationMock({
          catalog: await loadCatalog(options.catalogFile ?? read.optional('RESERVATION_CATALOG')),
          holdMs: options.holdMs ?? read.durationMs('RESERVATION_HOLD_TTL', 60_000),
        })
      : createPaymentMock({
          defaultScenario: options.scenario ?? (read.string('PAYMENT_SCENARIO', 'APPROVE').toUpperCase() as PaymentScenarioName),
          delayMs: options.delayMs ?? read.durationMs('PAYMENT_DELAY', 2000),
          seed: options.seed ?? read.int('PAYMENT_RANDOM_SEED', 42),
          randomApproveRate: read.number('PAYMENT_RANDOM_APPROVE_RATE', 0.7),
          webhookSecret: read.string('WEBHOOK_SECRET', 'tacos-dev-webhook-secret'),
        });
  return startMockServer({
    definition,
    host: read.string('SERVER_HOST', '127.0.0.1'),
    httpPort: options.httpPort ?? read.port(`${prefix}_HTTP_PORT`, DEFAULT_PORTS[name].http),
    grpcPort: options.grpcPort ?? read.port(`${prefix}_GRPC_PORT`, DEFAULT_PORTS[name].grpc),
    faults,
    logger,
  });
}

/** Runs a mock until SIGINT or SIGTERM, then stops it cleanly. */
export async function serveMock(name: MockName, options: MockOptions): Promise<void> {
  const mock = await startMock(name, options, loadEnvironment({envName: options.envName}));
  await waitForStopSignal();
  await mock.close();
}
