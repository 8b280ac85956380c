import {randomBytes} from 'node:crypto';
import {setTimeout as sleep} from 'node:timers/promises';
import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError} from '../../errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import {linkedSignal} from '../linked-signal.js';
import {newId, text} from '../message-fields.js';
import type {MockCallContext, RpcHandler} from '../mock-definition.js';
import {
  encodeCursor,
  notFound,
  enumName,
  FINAL_STATUSES,
  METHODS,
  metadataOf,
  pageOf,
  paymentView,
  positiveMoney,
  refundAmount,
  requiredText,
  scenarioOf,
  statusWord,
  STATUS,
  STATUSES,
  type Money,
  type PaymentScenarioName,
} from './messages.js';
import {SETTLE_AT_ONCE_TAG} from '../../settle-at-once.js';
import {INTENT_TTL_MS, type Intent, type PaymentState} from './state.js';
import {webhookType, type WebhookEvent, type WebhookSender, type WebhookTargets} from './webhooks.js';

const MAX_WEBHOOK_DELAY_SECONDS = 300;

/** What the payment service uses besides its state: the scenarios' settings, webhooks, and the mock's closing. */
export interface PaymentServiceDeps {
  defaultScenario: PaymentScenarioName;
  delayMs: number;
  timeoutCapMs: number;
  randomApproveRate: number;
  /** The RANDOM scenario's generator. */
  random: () => number;
  webhooks: WebhookSender;
  webhookTargets: WebhookTargets;
  publicUrl: () => string;
  /** Aborted by close(): DELAY and TIMEOUT calls stop waiting instead of outliving the server. */
  closing: AbortSignal;
}

/** payment.v1.PaymentService over the mock's intents: a simulated provider deciding by scenario. */
export function paymentService(state: PaymentState, deps: PaymentServiceDeps): Record<string, RpcHandler> {
  function announce(intent: Intent, status = intent.status, id = newId('evt')): Promise<boolean> {
    if (!intent.webhookUrl) return Promise.resolve(false);
    const event: WebhookEvent = {
      id,
      type: webhookType(status),
      created_at: new Date(state.now()).toISOString(),
      data: {payment_intent_id: intent.id, reservation_id: intent.reservationId, status, amount: {...intent.amount}},
    };
    return deps.webhooks.deliver(intent.webhookUrl, event);
  }

  /** Waits ms, or less if the caller gives up or the mock closes; then says why it stopped early. */
  async function wait(ms: number, signal: AbortSignal): Promise<'elapsed' | 'aborted'> {
    // Not AbortSignal.any: tied to the long-lived closing signal, it would keep one signal per call.
    const linked = linkedSignal([signal, deps.closing]);
    try {
      await sleep(ms, undefined, {signal: linked.signal, ref: false});
      return 'elapsed';
    } catch {
      if (deps.closing.aborted) throw new TacosError('The payment mock is shutting down.', {code: 'UNAVAILABLE'});
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
        return deps.random() < deps.randomApproveRate;
      case 'DELAY':
        if ((await wait(deps.delayMs, signal)) === 'aborted') {
          throw new TacosError(
            `The caller gave up before the delayed payment ${intent.id} was processed; it is pending again.`,
            {code: 'UPSTREAM_TIMEOUT'},
          );
        }
        return true;
      case 'TIMEOUT':
        // Outlasts any sensible deadline; the cap only stops a caller without one from waiting forever.
        await wait(deps.timeoutCapMs, signal);
        throw new TacosError(
          `The payment provider did not answer for ${intent.id} (scenario TIMEOUT); it is pending again.`,
          {code: 'UPSTREAM_TIMEOUT'},
        );
    }
  }

  /** Asks the provider (the scenario) and records its answer; a failure leaves the intent pending. */
  async function process(intent: Intent, signal: AbortSignal): Promise<void> {
    state.setStatus(intent, STATUS.PROCESSING);
    let approved: boolean;
    try {
      approved = await decide(intent, signal);
    } catch (error) {
      // Nothing was charged: the intent can be processed (or cancelled) again.
      state.setStatus(intent, STATUS.PENDING);
      throw error;
    }
    state.settle(intent, approved, state.now());
    void announce(intent);
  }

  /** force_trigger: the intent takes the target status; a forced outcome gets a result, as if processed. */
  function forceStatus(intent: Intent, target: string): void {
    const at = state.now();
    if ((target === STATUS.COMPLETED || target === STATUS.FAILED) && !intent.result)
      state.settle(intent, target === STATUS.COMPLETED, at);
    else state.setStatus(intent, target, at);
  }

  return {
    async CreatePaymentIntent(request: any) {
      return state.idempotency.run('CreatePaymentIntent', request.idempotency_key, request, async () => {
        const reservationId = text(request.reservation_id);
        if (!reservationId) throw invalidArgument('reservation_id', 'reservation_id is required.');
        const amount = positiveMoney(request.amount, 'amount');
        const scenario =
          scenarioOf(request.scenario, 'scenario') ??
          scenarioOf(request.metadata?.scenario, 'metadata.scenario') ??
          deps.defaultScenario;
        const webhookUrl = text(request.webhook_url);
        if (webhookUrl) await deps.webhookTargets.check(webhookUrl);
        const at = state.now();
        const intent = state.add({
          id: newId('pi'),
          reservationId,
          userId: text(request.user_id),
          amount,
          method: enumName(request.method, METHODS),
          scenario,
          webhookUrl,
          metadata: metadataOf(request.metadata, scenario),
          status: STATUS.PENDING,
          createdAt: at,
          updatedAt: at,
          expiresAt: at + INTENT_TTL_MS,
          paymentId: '',
          transactionId: '',
          result: null,
        });
        if (intent.metadata.tags[SETTLE_AT_ONCE_TAG] === 'true') {
          // After this answer (which says PENDING); only close() stops it. A failure (TIMEOUT, or the
          // mock closing) leaves the intent pending, as a failed process call does.
          setImmediate(() => void process(intent, deps.closing).catch(() => undefined));
        }
        return {
          payment_intent_id: intent.id,
          status: intent.status,
          client_secret: `${intent.id}_secret_${randomBytes(16).toString('hex')}`,
          // The mock has no checkout page; its status route is where the payment can be followed.
          payment_url: `${deps.publicUrl()}/api/v1/payments/${encodeURIComponent(intent.id)}`,
          expires_at: timestamp(intent.expiresAt),
          error: null,
        };
      });
    },

    async ProcessPayment(request: any, context: MockCallContext) {
      return state.idempotency.run(
        'ProcessPayment',
        request.idempotency_key,
        request,
        async () => {
          const intent = state.find(requiredText(request.payment_intent_id, 'payment_intent_id'));
          if (intent.status !== STATUS.PENDING) {
            throw new TacosError(
              `Payment intent ${intent.id} is ${statusWord(intent.status)}; only a pending intent can be processed.`,
              {
                code: 'FAILED_PRECONDITION',
              },
            );
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
      const intent = state.find(id);
      const userId = text(request.user_id);
      // Someone else's payment looks exactly like a missing one.
      if (userId && intent.userId && userId !== intent.userId) throw notFound(id);
      return {payment: paymentView(intent), error: null};
    },

    async CancelPayment(request: any) {
      return state.idempotency.run('CancelPayment', request.idempotency_key, request, async () => {
        const intent = state.find(requiredText(request.payment_intent_id, 'payment_intent_id'));
        const at = state.now();
        let refunded: Money = {amount: '0', currency: intent.amount.currency};
        let refundId = '';
        if (intent.status === STATUS.PENDING) {
          state.setStatus(intent, STATUS.CANCELLED, at);
        } else if (intent.status === STATUS.COMPLETED) {
          refunded = refundAmount(request.refund_amount, intent.amount);
          refundId = newId('re');
          state.setStatus(intent, STATUS.REFUNDED, at);
        } else {
          throw new TacosError(
            `Payment intent ${intent.id} is ${statusWord(intent.status)}; only a pending or completed payment can be cancelled.`,
            {
              code: 'FAILED_PRECONDITION',
            },
          );
        }
        void announce(intent);
        return {
          status: intent.status,
          cancelled_at: timestamp(at),
          refunded_amount: refunded,
          refund_id: refundId,
          error: null,
        };
      });
    },

    async ListPayments(request: any) {
      const userId = text(request.user_id);
      const reservationId = text(request.reservation_id);
      const status = enumName(request.status, STATUSES);
      const {offset, size} = pageOf(request.pagination);
      const matching = state
        .all()
        .filter(
          (intent) =>
            (!userId || intent.userId === userId) &&
            (!reservationId || intent.reservationId === reservationId) &&
            (status === STATUS.UNSPECIFIED || intent.status === status),
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
      const intent = state.find(requiredText(request.payment_intent_id, 'payment_intent_id'));
      const target = enumName(request.target_status, STATUSES);
      if (target === STATUS.UNSPECIFIED)
        throw invalidArgument('target_status', 'target_status is required: the status the webhook reports.');
      const delaySeconds = Number(request.delay_seconds ?? 0);
      if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_WEBHOOK_DELAY_SECONDS) {
        throw invalidArgument(
          'delay_seconds',
          `delay_seconds must be a whole number from 0 to ${MAX_WEBHOOK_DELAY_SECONDS} (got ${request.delay_seconds}).`,
        );
      }
      const force = request.force_trigger === true;
      if (!force) {
        if (!intent.webhookUrl) {
          throw new TacosError(
            `Payment intent ${intent.id} has no webhook_url to send to; set force_trigger to move its status without a webhook.`,
            {
              code: 'FAILED_PRECONDITION',
            },
          );
        }
        if (intent.status === target || FINAL_STATUSES.has(intent.status)) {
          throw new TacosError(
            `Payment intent ${intent.id} is already ${statusWord(intent.status)}; set force_trigger to send the webhook anyway.`,
            {
              code: 'FAILED_PRECONDITION',
            },
          );
        }
      }
      const webhookId = intent.webhookUrl ? newId('evt') : '';
      const scheduledAt = state.now() + delaySeconds * 1000;
      const fire = (): Promise<boolean> => {
        if (force) forceStatus(intent, target);
        return announce(intent, target, webhookId);
      };
      let sent = false;
      if (delaySeconds === 0) sent = await fire();
      else deps.webhooks.schedule(delaySeconds * 1000, () => void fire());
      return {webhook_sent: sent, webhook_id: webhookId, scheduled_at: timestamp(scheduledAt), error: null};
    },
  };
}
