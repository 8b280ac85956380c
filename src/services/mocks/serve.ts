import {EnvReader, loadEnvironment, type Environment} from '../config.js';
import {TacosError} from '../errors.js';
import {createLogger, LOG_LEVELS} from '../logging.js';
import {waitForStopSignal} from '../signals.js';
import {FAULT_DOORS, Faults, type FaultDoor} from './faults.js';
import type {MockDefinition} from './mock-definition.js';
import {startMockServer, type RunningMock} from './mock-server.js';
import {PAYMENT_SCENARIOS, type PaymentScenarioName} from './payment/messages.js';
import {createPaymentMock} from './payment/payment-mock.js';
import {isWebhookHostEntry} from './payment/webhooks.js';
import {loadCatalog} from '../catalog.js';
import {createReservationMock, DEFAULT_HOLD_MS} from './reservation/reservation-mock.js';
import {localBaseUrl} from './public-url.js';
import {readRedisSettings} from '../redis/client.js';
import {UpdatePublisher} from './update-publisher.js';
import {DEFAULT_RETENTION, type Retention} from './retention.js';

// `tacos serve payment` lists the scenarios from here.
export {PAYMENT_SCENARIOS};

export type MockName = 'reservation' | 'payment';

/** What the command line may set; anything unset comes from the environment, then the defaults. */
export interface MockOptions {
  envName?: string;
  httpPort?: number;
  grpcPort?: number;
  latencyMs?: number;
  errorRate?: number;
  /** Which doors latencyMs and errorRate are for (the other keeps none). */
  faultDoor?: FaultDoor;
  /** reservation */
  catalogFile?: string;
  holdMs?: number;
  /** payment */
  scenario?: PaymentScenarioName;
  delayMs?: number;
  seed?: number;
}

const DEFAULT_PORTS: Record<MockName, {http: number; grpc: number}> = {
  reservation: {http: 8010, grpc: 8011},
  payment: {http: 8030, grpc: 8031},
};

/**
 * Starts a mock backend on its ports (Traffic Tacos scheme: X010 REST, X011 gRPC), bound to
 * MOCK_HOST (127.0.0.1 by default). Not SERVER_HOST: that one is the gateway's, and a mock's
 * unauthenticated PUT /admin/faults must not follow the gateway onto a public address.
 */
export async function startMock(name: MockName, options: MockOptions, env: Environment): Promise<RunningMock> {
  const read = new EnvReader(env);
  const prefix = name.toUpperCase();
  const logger = createLogger(name, read.oneOfValues('LOG_LEVEL', LOG_LEVELS, 'info'));
  const faults = new Faults(
    {
      latencyMs: options.latencyMs ?? read.durationMs(`${prefix}_LATENCY`, 0),
      errorRate: options.errorRate ?? read.number(`${prefix}_ERROR_RATE`, 0),
    },
    options.faultDoor ?? read.oneOfValues(`${prefix}_FAULT_DOOR`, FAULT_DOORS, 'both'),
  );
  const host = read.string('MOCK_HOST', '127.0.0.1');
  const httpPort = options.httpPort ?? read.port(`${prefix}_HTTP_PORT`, DEFAULT_PORTS[name].http);
  const retention = retentionFromEnv(read);
  // Links the mock hands out name its own HTTP address, known for sure once it listens (port 0).
  let boundUrl: string | undefined;
  const publicUrl = () => boundUrl ?? localBaseUrl(host, httpPort);
  // MOCK_PUBLISH_UPDATES: the changes the mock makes, on the users' update channels in the Redis of REDIS_ADDRESS.
  const updates = read.bool('MOCK_PUBLISH_UPDATES', false)
    ? new UpdatePublisher(readRedisSettings(read), logger)
    : undefined;
  let running: RunningMock;
  try {
    const definition: MockDefinition =
      name === 'reservation'
        ? createReservationMock({
            catalog: await loadCatalog(options.catalogFile ?? read.optional('RESERVATION_CATALOG')),
            holdMs: options.holdMs ?? read.durationMs('RESERVATION_HOLD_TTL', DEFAULT_HOLD_MS),
            retention,
            publicUrl,
            onUpdate: updates?.publish,
          })
        : createPaymentMock({
            defaultScenario:
              options.scenario ?? (read.string('PAYMENT_SCENARIO', 'APPROVE').toUpperCase() as PaymentScenarioName),
            delayMs: options.delayMs ?? read.durationMs('PAYMENT_DELAY', 2000),
            seed: options.seed ?? read.int('PAYMENT_RANDOM_SEED', 42),
            randomApproveRate: read.number('PAYMENT_RANDOM_APPROVE_RATE', 0.7),
            webhookSecret: read.string('WEBHOOK_SECRET', 'tacos-dev-webhook-secret'),
            webhookAllowHosts: read.list(
              'PAYMENT_WEBHOOK_ALLOW_HOSTS',
              [],
              isWebhookHostEntry,
              'host names, IP addresses or CIDRs such as localhost,10.0.0.0/8',
            ),
            allowAnyWebhookHost: read.bool('PAYMENT_WEBHOOK_ALLOW_ANY_HOST', false),
            retention,
            publicUrl,
            onUpdate: updates?.publish,
          });
    running = await startMockServer({
      definition,
      host,
      httpPort,
      grpcPort: options.grpcPort ?? read.port(`${prefix}_GRPC_PORT`, DEFAULT_PORTS[name].grpc),
      faults,
      logger,
    });
  } catch (error) {
    await updates?.close();
    throw error;
  }
  boundUrl = localBaseUrl(host, running.httpPort);
  if (!updates) return running;
  return {
    ...running,
    close: async () => {
      await running.close();
      await updates.close();
    },
  };
}

/** MOCK_IDEMPOTENCY_TTL, MOCK_FINISHED_RETENTION and MOCK_CONFIRMED_RETENTION: positive durations. */
function retentionFromEnv(read: EnvReader): Retention {
  const positive = (variable: string, fallback: number): number => {
    const ms = read.durationMs(variable, fallback);
    if (!(ms > 0)) {
      throw new TacosError(`${variable}=${ms} is not valid: expected a positive duration such as 30m or 24h.`, {
        hint: `Fix ${variable} in the env file or the environment.`,
        code: 'INVALID_CONFIG',
      });
    }
    return ms;
  };
  return {
    idempotencyTtlMs: positive('MOCK_IDEMPOTENCY_TTL', DEFAULT_RETENTION.idempotencyTtlMs),
    finishedMs: positive('MOCK_FINISHED_RETENTION', DEFAULT_RETENTION.finishedMs),
    confirmedMs: positive('MOCK_CONFIRMED_RETENTION', DEFAULT_RETENTION.confirmedMs),
  };
}

/** Runs a mock until SIGINT or SIGTERM, then stops it cleanly. */
export async function serveMock(name: MockName, options: MockOptions): Promise<void> {
  const mock = await startMock(name, options, loadEnvironment({envName: options.envName}));
  await waitForStopSignal();
  await mock.close();
}
