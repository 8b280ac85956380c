import {PAYMENT_ROUTES} from '../../backends/routes.js';
import {usageError} from '../../errors.js';
import {PAYMENT_SERVICE} from '../../service-names.js';
import type {MockDefinition, RpcHandler, UpdateListener} from '../mock-definition.js';
import {paymentEvent} from '../../redis/user-channel.js';
import {publicUrlOf, type PublicUrl} from '../public-url.js';
import {retentionOf, type Retention} from '../retention.js';
import {PAYMENT_SCENARIOS, type PaymentScenarioName} from './messages.js';
import {paymentService} from './payment-service.js';
import {mulberry32} from './prng.js';
import {PaymentState} from './state.js';
import {WebhookSender, WebhookTargets, type ResolveHost, type WebhookFetch} from './webhooks.js';

const DEFAULT_TIMEOUT_CAP_MS = 60_000;

export interface PaymentMockOptions {
  /** Scenario of an intent whose request and metadata name none. */
  defaultScenario: PaymentScenarioName;
  /** How long DELAY waits before approving. */
  delayMs: number;
  /** Seed of the RANDOM scenario's generator: the same seed, the same outcomes. */
  seed: number;
  /** 0..1: the share of RANDOM payments approved. */
  randomApproveRate: number;
  /** Key of the webhooks' HMAC-SHA256 signature. */
  webhookSecret: string;
  /** Longest a TIMEOUT payment waits for its caller to give up; default 60 s. */
  timeoutCapMs?: number;
  /** Host names, IP addresses and CIDR ranges webhook_url may name, loopback and private ones included; default none. */
  webhookAllowHosts?: string[];
  /** Lets webhook_url name any host whose addresses are all public. */
  allowAnyWebhookHost?: boolean;
  /** How webhook hosts are resolved; default DNS (dns.lookup). */
  resolveWebhookHost?: ResolveHost;
  /** Base of payment_url: the mock's own HTTP address, or a getter of it (known once listening); default http://127.0.0.1:8030. */
  publicUrl?: PublicUrl;
  /**
   * How long idempotency answers and finished intents are kept (defaults in retention.ts: 24 h; 1 h for a
   * failed, cancelled, refunded or expired intent; 24 h for a completed one).
   */
  retention?: Partial<Retention>;
  fetch?: WebhookFetch;
  now?: () => number;
  /** Told of each status an intent takes, as the update its user's streams show (serve.ts publishes it). */
  onUpdate?: UpdateListener;
}

export interface PaymentMock extends MockDefinition {
  /** Webhooks the receiver answered with 2xx. */
  readonly webhooksDelivered: number;
  /** Webhooks that got no 2xx answer (error status, unreachable, 5 s timeout); never retried. */
  readonly webhookFailures: number;
  /** Resolves when no webhook is being delivered (for tests and shutdown). */
  webhooksIdle(): Promise<void>;
}

/** The payment provider simulator: payment.v1.PaymentService in memory (see state.ts for what it keeps), for `tacos serve payment`. */
export function createPaymentMock(options: PaymentMockOptions): PaymentMock {
  checkOptions(options);
  const state = new PaymentState(
    retentionOf(options.retention, usageError),
    options.now ?? Date.now,
    (intent, oldStatus) =>
      options.onUpdate?.(
        intent.userId,
        paymentEvent({id: intent.id, oldStatus, newStatus: intent.status}, intent.updatedAt, ''),
      ),
  );
  const webhookTargets = new WebhookTargets({
    allowHosts: options.webhookAllowHosts ?? [],
    allowAnyPublicHost: options.allowAnyWebhookHost ?? false,
    resolve: options.resolveWebhookHost,
  });
  const webhooks = new WebhookSender(options.webhookSecret, webhookTargets, options.fetch);
  const closing = new AbortController();
  const handlers = paymentService(state, {
    defaultScenario: options.defaultScenario,
    delayMs: options.delayMs,
    timeoutCapMs: options.timeoutCapMs ?? DEFAULT_TIMEOUT_CAP_MS,
    randomApproveRate: options.randomApproveRate,
    random: mulberry32(options.seed),
    webhooks,
    webhookTargets,
    publicUrl: publicUrlOf(options.publicUrl, 'http://127.0.0.1:8030'),
    closing: closing.signal,
  });

  // Every call first forgets what is past its retention.
  const tidied: Record<string, RpcHandler> = Object.fromEntries(
    Object.entries(handlers).map(([method, handler]): [string, RpcHandler] => [
      method,
      async (request, context) => {
        state.prune();
        return handler(request, context);
      },
    ]),
  );

  let closed = false;
  return {
    name: 'payment',
    services: {[PAYMENT_SERVICE]: tidied},
    routes: PAYMENT_ROUTES,
    get webhooksDelivered() {
      return webhooks.delivered;
    },
    get webhookFailures() {
      return webhooks.failures;
    },
    webhooksIdle: () => webhooks.idle(),
    close() {
      if (closed) return;
      closed = true;
      closing.abort();
      webhooks.close();
    },
  };
}

function checkOptions(options: PaymentMockOptions): void {
  if (!PAYMENT_SCENARIOS.includes(options.defaultScenario)) {
    throw usageError(
      `The payment scenario must be one of ${PAYMENT_SCENARIOS.join(', ')} (got ${options.defaultScenario}).`,
    );
  }
  if (!Number.isFinite(options.delayMs) || options.delayMs < 0)
    throw usageError(`The payment delay must be 0 or more milliseconds (got ${options.delayMs}).`);
  if (!Number.isFinite(options.seed)) throw usageError(`The payment seed must be a number (got ${options.seed}).`);
  if (!(options.randomApproveRate >= 0 && options.randomApproveRate <= 1)) {
    throw usageError(`The approve rate of RANDOM must be between 0 and 1 (got ${options.randomApproveRate}).`);
  }
  if (options.timeoutCapMs !== undefined && !(Number.isFinite(options.timeoutCapMs) && options.timeoutCapMs > 0)) {
    throw usageError(`The TIMEOUT cap must be a positive number of milliseconds (got ${options.timeoutCapMs}).`);
  }
}
