import {randomBytes} from 'node:crypto';
import {setTimeout as sleep} from 'node:timers/promises';
import {invalidArgument} from '../../api-errors.js';
import {PAYMENT_ROUTES} from '../../backends/routes.js';
import {TacosError, usageError} from '../../errors.js';
import {timestamp} from '../../grpc/handlers.js';
import type {CallContext, MockDefinition, RpcHandler} from '../kit.js';
import {DEFAULT_PAGE_SIZE, DueQueue, linkedSignal, MAX_PAGE_SIZE, newId, publicUrlOf, retentionOf, text, type PublicUrl, type Retention} from '../util.js';
import {IdempotencyStore} from './idempotency.js';
import {mulberry32} from './prng.js';
import {SETTLE_AT_ONCE_TAG} from './settle-at-once.js';
import {WebhookSender, WebhookTargets, webhookType, type ResolveHost, type WebhookEvent, type WebhookFetch} from './webhooks.js';

export const PAYMENT_SERVICE = 'payment.v1.PaymentService';
export const PAYMENT_SCENARIOS = ['APPROVE', 'FAIL', 'DELAY', 'RANDOM', 'TIMEOUT'] as const;
export type PaymentScenarioName = (typeof PAYMENT_SCENARIOS)[number];

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
   * How long idempotency answers and finished intents are kept (defaults in util.ts: 24 h; 1 h for a
   * failed, cancelled, refunded or expired intent; 24 h for a completed one).
   */
  retention?: Partial<Retention>;
  fetch?: WebhookFetch;
  now?: () => number;
}

export interface PaymentMock extends MockDefinition {
  /** Webhooks the receiver answered with 2xx. */
  readonly webhooksDelivered: number;
  /** Webhooks that got no 2xx answer (error status, unreachable, 5 s timeout); never retried. */
  readonly webhookFailures: number;
  /** Resolves when no webhook is being delivered (for tests and shutdown). */
  webhooksIdle(): Promise<void>;
}

type Timestamp = {seconds: string; nanos: number};
interface Money {
  amount: string;
  currency: string;
}
interface Metadata {
  source: string;
  user_agent: string;
  ip_address: string;
  session_id: string;
  scenario: string;
  tags: Record<string, string>;
}
interface PaymentResult {
  success: boolean;
  failure_reason: string;
  gateway_response: string;
  response_code: number;
  processed_at: Timestamp;
}

interface Intent {
  id: string;
  /** Creation order: breaks ties between intents created in the same millisecond. */
  seq: number;
  reservationId: string;
  userId: string;
  amount: Money;
  method: string;
  scenario: PaymentScenarioName;
  webhookUrl: string;
  metadata: Metadata;
  status: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  processedAt?: number;
  paymentId: string;
  transactionId: string;
  result: PaymentResult | null;
}

const S = {
  UNSPECIFIED: 'PAYMENT_STATUS_UNSPECIFIED',
  PENDING: 'PAYMENT_STATUS_PENDING',
  PROCESSING: 'PAYMENT_STATUS_PROCESSING',
  COMPLETED: 'PAYMENT_STATUS_COMPLETED',
  FAILED: 'PAYMENT_STATUS_FAILED',
  CANCELLED: 'PAYMENT_STATUS_CANCELLED',
  REFUNDED: 'PAYMENT_STATUS_REFUNDED',
  EXPIRED: 'PAYMENT_STATUS_EXPIRED',
} as const;
// Enum names in number order, for a caller that sends numbers.
const STATUSES = Object.values(S) as string[];
const METHODS = [
  'PAYMENT_METHOD_UNSPECIFIED',
  'PAYMENT_METHOD_CREDIT_CARD',
  'PAYMENT_METHOD_DEBIT_CARD',
  'PAYMENT_METHOD_BANK_TRANSFER',
  'PAYMENT_METHOD_MOBILE_PAY',
  'PAYMENT_METHOD_DIGITAL_WALLET',
];
const FINAL_STATUSES = new Set<string>([S.COMPLETED, S.FAILED, S.CANCELLED, S.REFUNDED, S.EXPIRED]);

const INTENT_TTL_MS = 15 * 60_000;
const DEFAULT_TIMEOUT_CAP_MS = 60_000;
const MAX_WEBHOOK_DELAY_SECONDS = 300;
const DECLINE_REASON = 'card_declined';

/**
 * The payment provider simulator: payment.v1.PaymentService in memory, for `tacos serve payment`.
 *
 * Retention: an intent is forgotten `retention.finishedMs` after it failed, was cancelled, refunded
 * or expired (a pending intent expires 15 minutes after it was created, even if nobody asks about
 * it again), and `retention.confirmedMs` after it completed; a forgotten intent answers NOT_FOUND,
 * as an unknown one does. An intent pending or processing is never forgotten. Pruning is lazy:
 * every call first expires and removes what fell due, a batch at a time.
 */
export function createPaymentMock(options: PaymentMockOptions): PaymentMock {
  checkOptions(options);
  const retention = retentionOf(options.retention, usageError);
  const now = options.now ?? Date.now;
  const timeoutCapMs = options.timeoutCapMs ?? DEFAULT_TIMEOUT_CAP_MS;
  const publicUrl = publicUrlOf(options.publicUrl, 'http://127.0.0.1:8030');
  const random = mulberry32(options.seed);
  const webhookTargets = new WebhookTargets({
    allowHosts: options.webhookAllowHosts ?? [],
    allowAnyPublicHost: options.allowAnyWebhookHost ?? false,
    resolve: options.resolveWebhookHost,
  });
  const webhooks = new WebhookSender(options.webhookSecret, webhookTargets, options.fetch);
  const idempotency = new IdempotencyStore(retention.idempotencyTtlMs, now);
  const intents = new Map<string, Intent>();
  // Intents by when to look at them again: pending ones at their expiry, finished ones at the end of their retention.
  const pendingQueue = new DueQueue<string>(INTENT_TTL_MS);
  const finishedQueue = new DueQueue<string>(retention.finishedMs);
  const completedQueue = new DueQueue<string>(retention.confirmedMs);
  // Aborted by close(): DELAY and TIMEOUT calls stop waiting instead of outliving the server.
  const closing = new AbortController();
  let nextSeq = 0;

  function find(id: string): Intent {
    const intent = intents.get(id);
    // Never created, or forgotten after its retention (see above): the same NOT_FOUND.
    if (!intent) throw notFound(id);
    expireIfDue(intent);
    return intent;
  }

  /** A pending intent past its expiry becomes EXPIRED, as of its expiry. */
  function expireIfDue(intent: Intent): void {
    if (intent.status === S.PENDING && now() >= intent.expiresAt) setStatus(intent, S.EXPIRED, intent.expiresAt);
  }

  function setStatus(intent: Intent, status: string, at = now()): void {
    intent.status = status;
    intent.updatedAt = at;
    pendingQueue.delete(intent.id);
    finishedQueue.delete(intent.id);
    completedQueue.delete(intent.id);
    if (status === S.COMPLETED) completedQueue.add(intent.id, at);
    else if (FINAL_STATUSES.has(status)) finishedQueue.add(intent.id, at);
    else if (status === S.PENDING) pendingQueue.add(intent.id, intent.createdAt);
    // PROCESSING: the call under way sets the next status.
  }

  /** Expires pending intents past their time and forgets finished ones past their retention; never a live one. */
  function prune(): void {
    const at = now();
    for (const id of pendingQueue.takeDue(at)) {
      const intent = intents.get(id);
      if (intent) expireIfDue(intent);
    }
    for (const id of [...finishedQueue.takeDue(at), ...completedQueue.takeDue(at)]) {
      if (FINAL_STATUSES.has(intents.get(id)?.status ?? '')) intents.delete(id);
    }
    idempotency.prune();
  }

  function announce(intent: Intent, status = intent.status, id = newId('evt')): Promise<boolean> {
    if (!intent.webhookUrl) return Promise.resolve(false);
    const event: WebhookEvent = {
      id,
      type: webhookType(status),
      created_at: new Date(now()).toISOString(),
      data: {payment_intent_id: intent.id, reservation_id: intent.reservationId, status, amount: {...intent.amount}},
    };
    return webhooks.deliver(intent.webhookUrl, event);
  }

  /** Records the provider's answer, as processing does, and announces it. */
  function settle(intent: Intent, approved: boolean, at: number): void {
    intent.paymentId = newId('pay');
    intent.transactionId = newId('txn');
    intent.processedAt = at;
    intent.result = approved
      ? {success: true, failure_reason: '', gateway_response: gatewayResponse(200, 'approved', intent.scenario), response_code: 200, processed_at: timestamp(at)}
      : {
          success: false,
          failure_reason: DECLINE_REASON,
          gateway_response: gatewayResponse(402, DECLINE_REASON, intent.scenario),
          response_code: 402,
          processed_at: timestamp(at),
        };
    setStatus(intent, approved ? S.COMPLETED : S.FAILED, at);
  }

  /** Waits ms, or less if the caller gives up or the mock closes; then says why it stopped early. */
  async function wait(ms: number, signal: AbortSignal): Promise<'elapsed' | 'aborted'> {
    // Not AbortSignal.any: tied to the long-lived closing signal, it would keep one signal per call.
    const linked = linkedSignal([signal, closing.signal]);
    try {
      await sleep(ms, undefined, {signal: linked.signal, ref: false});
      return 'elapsed';
    } catch {
      if (closing.signal.aborted) throw new TacosError('The payment mock is shutting down.', {code: 'UNAVAILABLE'});
      return 'aborted';
    } finally {
      linked.dispose();
    }
  }

  /** The provider's decision for the intent's scenario: true to approve. */
  async function decide(intent: Intent, signal: AbortSignal): Promise<boolean> {
    switch (intent.scenario) {
      case 'APPROVE':
        return true;
      case 'FAIL':
        return false;
      case 'RANDOM':
        return random() < options.randomApproveRate;
      case 'DELAY':
        if ((await wait(options.delayMs, signal)) === 'aborted') {
          throw new TacosError(`The caller gave up before the delayed payment ${intent.id} was processed; it is pending again.`, {code: 'UPSTREAM_TIMEOUT'});
        }
        return true;
      case 'TIMEOUT':
        // Outlasts any sensible deadline; the cap only stops a caller without one from waiting forever.
        await wait(timeoutCapMs, signal);
        throw new TacosError(`The payment provider did not answer for ${intent.id} (scenario TIMEOUT); it is pending again.`, {code: 'UPSTREAM_TIMEOUT'});
    }
  }

  /** Asks the provider (the scenario) and records its answer; a failure leaves the intent pending. */
  async function process(intent: Intent, signal: AbortSignal): Promise<void> {
    setStatus(intent, S.PROCESSING);
    let approved: boolean;
    try {
      approved = await decide(intent, signal);
    } catch (error) {
      // Nothing was charged: the intent can be processed (or cancelled) again.
      setStatus(intent, S.PENDING);
      throw error;
    }
    settle(intent, approved, now());
    void announce(intent);
  }

  const handlers: Record<string, RpcHandler> = {
    async CreatePaymentIntent(request: any) {
      return idempotency.run('CreatePaymentIntent', request.idempotency_key, request, async () => {
        const reservationId = text(request.reservation_id);
        if (!reservationId) throw invalidArgument('reservation_id', 'reservation_id is required.');
        const amount = positiveMoney(request.amount, 'amount');
        const scenario = scenarioOf(request.scenario, 'scenario') ?? scenarioOf(request.metadata?.scenario, 'metadata.scenario') ?? options.defaultScenario;
        const webhookUrl = text(request.webhook_url);
        if (webhookUrl) await webhookTargets.check(webhookUrl);
        const at = now();
        const intent: Intent = {
          id: newId('pi'),
          seq: nextSeq++,
          reservationId,
          userId: text(request.user_id),
          amount,
          method: enumName(request.method, METHODS),
          scenario,
          webhookUrl,
          metadata: metadataOf(request.metadata, scenario),
          status: S.PENDING,
          createdAt: at,
          updatedAt: at,
          expiresAt: at + INTENT_TTL_MS,
          paymentId: '',
          transactionId: '',
          result: null,
        };
        intents.set(intent.id, intent);
        pendingQueue.add(intent.id, at);
        if (intent.metadata.tags[SETTLE_AT_ONCE_TAG] === 'true') {
          // After this answer (which says PENDING); only close() stops it. A failure (TIMEOUT, or the
          // mock closing) leaves the intent pending, as a failed process call does.
          setImmediate(() => void process(intent, closing.signal).catch(() => undefined));
        }
        return {
          payment_intent_id: intent.id,
          status: intent.status,
          client_secret: `${intent.id}_secret_${randomBytes(16).toString('hex')}`,
          // The mock has no checkout page; its status route is where the payment can be followed.
          payment_url: `${publicUrl()}/api/v1/payments/${encodeURIComponent(intent.id)}`,
          expires_at: timestamp(intent.expiresAt),
          error: null,
        };
      });
    },

    async ProcessPayment(request: any, context: CallContext) {
      return idempotency.run(
        'ProcessPayment',
        request.idempotency_key,
        request,
        async () => {
          const intent = find(requiredText(request.payment_intent_id, 'payment_intent_id'));
          if (intent.status !== S.PENDING) {
            throw new TacosError(`Payment intent ${intent.id} is ${statusWord(intent.status)}; only a pending intent can be processed.`, {
              code: 'FAILED_PRECONDITION',
            });
          }
          const method = enumName(request.payment_details?.method, METHODS);
          if (method !== METHODS[0]) intent.method = method;
          await process(intent, context.signal);
          return {
            payment_id: intent.paymentId,
            status: intent.status,
            processed_at: timestamp(intent.processedAt as number),
            transaction_id: intent.transactionId,
            result: structuredClone(intent.result),
            error: null,
          };
        },
        context.signal,
      );
    },

    async GetPaymentStatus(request: any) {
      const id = requiredText(request.payment_intent_id, 'payment_intent_id');
      const intent = find(id);
      const userId = text(request.user_id);
      // Someone else's payment looks exactly like a missing one.
      if (userId && intent.userId && userId !== intent.userId) throw notFound(id);
      return {payment: paymentView(intent), error: null};
    },

    async CancelPayment(request: any) {
      return idempotency.run('CancelPayment', request.idempotency_key, request, async () => {
        const intent = find(requiredText(request.payment_intent_id, 'payment_intent_id'));
        const at = now();
        let refunded: Money = {amount: '0', currency: intent.amount.currency};
        let refundId = '';
        if (intent.status === S.PENDING) {
          setStatus(intent, S.CANCELLED, at);
        } else if (intent.status === S.COMPLETED) {
          refunded = refundAmount(request.refund_amount, intent.amount);
          refundId = newId('re');
          setStatus(intent, S.REFUNDED, at);
        } else {
          throw new TacosError(`Payment intent ${intent.id} is ${statusWord(intent.status)}; only a pending or completed payment can be cancelled.`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        void announce(intent);
        return {status: intent.status, cancelled_at: timestamp(at), refunded_amount: refunded, refund_id: refundId, error: null};
      });
    },

    async ListPayments(request: any) {
      const userId = text(request.user_id);
      const reservationId = text(request.reservation_id);
      const status = enumName(request.status, STATUSES);
      const {offset, size} = pageOf(request.pagination);
      const matching = [...intents.values()]
        .map((intent) => find(intent.id))
        .filter(
          (intent) =>
            (!userId || intent.userId === userId) && (!reservationId || intent.reservationId === reservationId) && (status === S.UNSPECIFIED || intent.status === status),
        )
        .sort((a, b) => b.createdAt - a.createdAt || b.seq - a.seq);
      const hasNext = offset + size < matching.length;
      return {
        payments: matching.slice(offset, offset + size).map(paymentView),
        page_info: {
          total_count: matching.length,
          has_next_page: hasNext,
          has_previous_page: offset > 0,
          next_cursor: hasNext ? encodeCursor(offset + size) : '',
          previous_cursor: offset > 0 ? encodeCursor(Math.max(0, offset - size)) : '',
        },
        error: null,
      };
    },

    async SimulateWebhook(request: any) {
      const intent = find(requiredText(request.payment_intent_id, 'payment_intent_id'));
      const target = enumName(request.target_status, STATUSES);
      if (target === S.UNSPECIFIED) throw invalidArgument('target_status', 'target_status is required: the status the webhook reports.');
      const delaySeconds = Number(request.delay_seconds ?? 0);
      if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_WEBHOOK_DELAY_SECONDS) {
        throw invalidArgument('delay_seconds', `delay_seconds must be a whole number from 0 to ${MAX_WEBHOOK_DELAY_SECONDS} (got ${request.delay_seconds}).`);
      }
      const force = request.force_trigger === true;
      if (!force) {
        if (!intent.webhookUrl) {
          throw new TacosError(`Payment intent ${intent.id} has no webhook_url to send to; set force_trigger to move its status without a webhook.`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        if (intent.status === target || FINAL_STATUSES.has(intent.status)) {
          throw new TacosError(`Payment intent ${intent.id} is already ${statusWord(intent.status)}; set force_trigger to send the webhook anyway.`, {
            code: 'FAILED_PRECONDITION',
          });
        }
      }
      const webhookId = intent.webhookUrl ? newId('evt') : '';
      const scheduledAt = now() + delaySeconds * 1000;
      const fire = (): Promise<boolean> => {
        if (force) forceStatus(intent, target);
        return announce(intent, target, webhookId);
      };
      let sent = false;
      if (delaySeconds === 0) sent = await fire();
      else webhooks.schedule(delaySeconds * 1000, () => void fire());
      return {webhook_sent: sent, webhook_id: webhookId, scheduled_at: timestamp(scheduledAt), error: null};
    },
  };

  /** force_trigger: the intent takes the target status; a forced outcome gets a result, as if processed. */
  function forceStatus(intent: Intent, target: string): void {
    const at = now();
    if ((target === S.COMPLETED || target === S.FAILED) && !intent.result) settle(intent, target === S.COMPLETED, at);
    else setStatus(intent, target, at);
  }

  // Every call first forgets what is past its retention.
  const tidied: Record<string, RpcHandler> = Object.fromEntries(
    Object.entries(handlers).map(([method, handler]): [string, RpcHandler] => [
      method,
      async (request, context) => {
        prune();
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
    throw usageError(`The payment scenario must be one of ${PAYMENT_SCENARIOS.join(', ')} (got ${options.defaultScenario}).`);
  }
  if (!Number.isFinite(options.delayMs) || options.delayMs < 0) throw usageError(`The payment delay must be 0 or more milliseconds (got ${options.delayMs}).`);
  if (!Number.isFinite(options.seed)) throw usageError(`The payment seed must be a number (got ${options.seed}).`);
  if (!(options.randomApproveRate >= 0 && options.randomApproveRate <= 1)) {
    throw usageError(`The approve rate of RANDOM must be between 0 and 1 (got ${options.randomApproveRate}).`);
  }
  if (options.timeoutCapMs !== undefined && !(Number.isFinite(options.timeoutCapMs) && options.timeoutCapMs > 0)) {
    throw usageError(`The TIMEOUT cap must be a positive number of milliseconds (got ${options.timeoutCapMs}).`);
  }
}

function notFound(id: string): TacosError {
  return new TacosError(`Payment intent ${id} was not found.`, {code: 'NOT_FOUND'});
}

function requiredText(value: unknown, field: string): string {
  const result = text(value);
  if (!result) throw invalidArgument(field, `${field} is required.`);
  return result;
}

/** An enum field as its name; proto-loader gives names, but a number (an unknown value) may come. */
function enumName(value: unknown, names: string[]): string {
  if (typeof value === 'number') return names[value] ?? names[0];
  return typeof value === 'string' && value !== '' ? value : names[0];
}

function scenarioOf(value: unknown, field: string): PaymentScenarioName | undefined {
  const name = enumName(value, ['PAYMENT_SCENARIO_UNSPECIFIED', ...PAYMENT_SCENARIOS.map((scenario) => `PAYMENT_SCENARIO_${scenario}`)]);
  if (name === 'PAYMENT_SCENARIO_UNSPECIFIED') return undefined;
  const scenario = name.replace(/^PAYMENT_SCENARIO_/, '') as PaymentScenarioName;
  if (!PAYMENT_SCENARIOS.includes(scenario)) throw invalidArgument(field, `${field} ${name} is not a PaymentScenario.`);
  return scenario;
}

/** Minor units as a canonical decimal string (int64 travels as a string). */
function minorUnits(value: unknown): bigint | undefined {
  const digits = text(value ?? '0').trim();
  return /^-?\d+$/.test(digits) ? BigInt(digits) : undefined;
}

function positiveMoney(value: any, field: string): Money {
  const amount = minorUnits(value?.amount);
  if (amount === undefined || amount <= 0n) {
    throw invalidArgument(field, `${field}.amount must be a positive whole number of minor units (got ${JSON.stringify(value?.amount ?? null)}).`);
  }
  const currency = text(value?.currency).trim();
  if (!currency) throw invalidArgument(field, `${field}.currency is required (an ISO 4217 code such as KRW).`);
  return {amount: amount.toString(), currency};
}

/** The refund of a completed payment: the whole amount unless a smaller one in its currency is asked. */
function refundAmount(value: any, paid: Money): Money {
  const amount = minorUnits(value?.amount);
  if (amount === 0n) return {...paid};
  if (amount === undefined || amount < 0n || amount > BigInt(paid.amount)) {
    throw invalidArgument('refund_amount', `refund_amount.amount must be from 1 to the ${paid.amount} paid (got ${JSON.stringify(value?.amount ?? null)}).`);
  }
  const currency = text(value?.currency).trim();
  if (currency && currency !== paid.currency) {
    throw invalidArgument('refund_amount', `refund_amount.currency must be ${paid.currency}, the payment's currency (got ${currency}).`);
  }
  return {amount: amount.toString(), currency: paid.currency};
}

function metadataOf(value: any, scenario: PaymentScenarioName): Metadata {
  const tags: Record<string, string> = {};
  for (const [key, tag] of Object.entries((value?.tags ?? {}) as Record<string, unknown>)) tags[key] = text(tag);
  return {
    source: text(value?.source),
    user_agent: text(value?.user_agent),
    ip_address: text(value?.ip_address),
    session_id: text(value?.session_id),
    // The scenario in effect, whichever way it was chosen.
    scenario: `PAYMENT_SCENARIO_${scenario}`,
    tags,
  };
}

/** The Payment message of an intent, a fresh object every time. */
function paymentView(intent: Intent): object {
  return {
    payment_intent_id: intent.id,
    payment_id: intent.paymentId,
    reservation_id: intent.reservationId,
    user_id: intent.userId,
    status: intent.status,
    amount: {...intent.amount},
    method: intent.method,
    created_at: timestamp(intent.createdAt),
    updated_at: timestamp(intent.updatedAt),
    processed_at: intent.processedAt === undefined ? null : timestamp(intent.processedAt),
    transaction_id: intent.transactionId,
    result: intent.result ? structuredClone(intent.result) : null,
    metadata: structuredClone(intent.metadata),
  };
}

function statusWord(status: string): string {
  return status.replace(/^PAYMENT_STATUS_/, '').toLowerCase();
}

function gatewayResponse(code: number, message: string, scenario: PaymentScenarioName): string {
  return JSON.stringify({simulated: true, code, message, scenario});
}

/** Offset and size of the requested page; a cursor (an encoded offset) wins over page. */
function pageOf(pagination: any): {offset: number; size: number} {
  const page = Number(pagination?.page ?? 0);
  const pageSize = Number(pagination?.page_size ?? 0);
  if (!Number.isInteger(page) || page < 0) throw invalidArgument('pagination.page', `pagination.page must be 1 or more (got ${pagination?.page}).`);
  if (!Number.isInteger(pageSize) || pageSize < 0) {
    throw invalidArgument('pagination.page_size', `pagination.page_size must be 0 (the default of ${DEFAULT_PAGE_SIZE}) or more (got ${pagination?.page_size}).`);
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const cursor = text(pagination?.cursor);
  if (cursor) return {offset: decodeCursor(cursor), size};
  return {offset: (Math.max(page, 1) - 1) * size, size};
}

function encodeCursor(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^offset:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw invalidArgument('pagination.cursor', 'pagination.cursor is not a cursor this service returned.');
  return Number(match[1]);
}
