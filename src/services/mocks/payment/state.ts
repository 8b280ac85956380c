import {timestamp} from '../../server-kit/grpc/handlers.js';
import {DueQueue, type Retention} from '../retention.js';
import {IdempotencyStore} from './idempotency.js';
import {
  FINAL_STATUSES,
  gatewayResponse,
  notFound,
  STATUS,
  type Metadata,
  type Money,
  type PaymentResult,
  type PaymentScenarioName,
} from './messages.js';
import {newId} from '../message-fields.js';

/** How long a pending intent waits to be processed before it expires. */
export const INTENT_TTL_MS = 15 * 60_000;
const DECLINE_REASON = 'card_declined';

export interface Intent {
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

/**
 * The payment mock's intents and idempotency answers in memory.
 *
 * Retention: an intent is forgotten `retention.finishedMs` after it failed, was cancelled, refunded
 * or expired (a pending intent expires 15 minutes after it was created, even if nobody asks about
 * it again), and `retention.confirmedMs` after it completed; a forgotten intent answers NOT_FOUND,
 * as an unknown one does. An intent pending or processing is never forgotten. Pruning is lazy:
 * every call first expires and removes what fell due, a batch at a time.
 */
export class PaymentState {
  readonly idempotency: IdempotencyStore;
  private readonly intents = new Map<string, Intent>();
  // Intents by when to look at them again: pending ones at their expiry, finished ones at the end of their retention.
  private readonly pendingQueue = new DueQueue<string>(INTENT_TTL_MS);
  private readonly finishedQueue: DueQueue<string>;
  private readonly completedQueue: DueQueue<string>;
  private nextSeq = 0;

  constructor(
    retention: Retention,
    readonly now: () => number,
    /** Told of every status an intent takes (created pending, processing, settled...), after it took it. */
    private readonly onChange: (intent: Intent, oldStatus: string) => void = () => undefined,
  ) {
    this.idempotency = new IdempotencyStore(retention.idempotencyTtlMs, now);
    this.finishedQueue = new DueQueue<string>(retention.finishedMs);
    this.completedQueue = new DueQueue<string>(retention.confirmedMs);
  }

  /** Keeps a new pending intent (its `seq` is given here). */
  add(intent: Omit<Intent, 'seq'>): Intent {
    const kept: Intent = {...intent, seq: this.nextSeq++};
    this.intents.set(kept.id, kept);
    this.pendingQueue.add(kept.id, kept.createdAt);
    this.onChange(kept, STATUS.UNSPECIFIED);
    return kept;
  }

  /** Every intent kept, expired ones marked so. */
  all(): Intent[] {
    return [...this.intents.values()].map((intent) => this.find(intent.id));
  }

  find(id: string): Intent {
    const intent = this.intents.get(id);
    // Never created, or forgotten after its retention (see above): the same NOT_FOUND.
    if (!intent) throw notFound(id);
    this.expireIfDue(intent);
    return intent;
  }

  setStatus(intent: Intent, status: string, at = this.now()): void {
    const oldStatus = intent.status;
    intent.status = status;
    intent.updatedAt = at;
    this.pendingQueue.delete(intent.id);
    this.finishedQueue.delete(intent.id);
    this.completedQueue.delete(intent.id);
    if (status === STATUS.COMPLETED) this.completedQueue.add(intent.id, at);
    else if (FINAL_STATUSES.has(status)) this.finishedQueue.add(intent.id, at);
    else if (status === STATUS.PENDING) this.pendingQueue.add(intent.id, intent.createdAt);
    // PROCESSING: the call under way sets the next status.
    if (status !== oldStatus) this.onChange(intent, oldStatus);
  }

  /** Records the provider's answer, as processing does. */
  settle(intent: Intent, approved: boolean, at: number): void {
    intent.paymentId = newId('pay');
    intent.transactionId = newId('txn');
    intent.processedAt = at;
    intent.result = approved
      ? {
          success: true,
          failure_reason: '',
          gateway_response: gatewayResponse(200, 'approved', intent.scenario),
          response_code: 200,
          processed_at: timestamp(at),
        }
      : {
          success: false,
          failure_reason: DECLINE_REASON,
          gateway_response: gatewayResponse(402, DECLINE_REASON, intent.scenario),
          response_code: 402,
          processed_at: timestamp(at),
        };
    this.setStatus(intent, approved ? STATUS.COMPLETED : STATUS.FAILED, at);
  }

  /** Expires pending intents past their time and forgets finished ones past their retention; never a live one. */
  prune(): void {
    const at = this.now();
    for (const id of this.pendingQueue.takeDue(at)) {
      const intent = this.intents.get(id);
      if (intent) this.expireIfDue(intent);
    }
    for (const id of [...this.finishedQueue.takeDue(at), ...this.completedQueue.takeDue(at)]) {
      if (FINAL_STATUSES.has(this.intents.get(id)?.status ?? '')) this.intents.delete(id);
    }
    this.idempotency.prune();
  }

  /** A pending intent past its expiry becomes EXPIRED, as of its expiry. */
  private expireIfDue(intent: Intent): void {
    if (intent.status === STATUS.PENDING && this.now() >= intent.expiresAt)
      this.setStatus(intent, STATUS.EXPIRED, intent.expiresAt);
  }
}
