import {createHmac} from 'node:crypto';
import {invalidArgument} from '../../api-errors.js';
import {isLoopbackHost} from '../../net.js';
import {linkedSignal} from '../util.js';

/** What a receiver gets: the body of every webhook POST. */
export interface WebhookEvent {
  /** `evt_...`; SimulateWebhook answers it as webhook_id. */
  id: string;
  /** `payment.completed`, `payment.failed`, `payment.refunded`...: the status, lower case. */
  type: string;
  /** RFC 3339. */
  created_at: string;
  data: {
    payment_intent_id: string;
    reservation_id: string;
    /** The PaymentStatus name, e.g. PAYMENT_STATUS_COMPLETED. */
    status: string;
    /** proto3 JSON Money: the int64 amount as a string. */
    amount: {amount: string; currency: string};
  };
}

export const WEBHOOK_SIGNATURE_HEADER = 'X-Webhook-Signature';
const DELIVERY_TIMEOUT_MS = 5000;

/** `sha256=<hex HMAC-SHA256(body, secret)>`, over the exact bytes sent. */
export function webhookSignature(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** `payment.completed` for PAYMENT_STATUS_COMPLETED. */
export function webhookType(status: string): string {
  return `payment.${status.replace(/^PAYMENT_STATUS_/, '').toLowerCase()}`;
}

/**
 * Refuses a webhook_url the mock must not POST to: not http(s), or (unless allowed) not a loopback
 * host. A development mock that posts wherever a request says would be an open relay.
 */
export function checkWebhookUrl(url: string, allowAnyHost: boolean): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidArgument('webhook_url', `webhook_url is not a valid URL: ${JSON.stringify(url)}.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidArgument('webhook_url', `webhook_url must be an http:// or https:// URL (got ${parsed.protocol}).`);
  }
  if (!allowAnyHost && !isLoopbackHost(parsed.hostname)) {
    throw invalidArgument(
      'webhook_url',
      `webhook_url must point at this machine (127.0.0.1, ::1 or localhost), not ${parsed.hostname}; the payment mock can be started to allow any host.`,
    );
  }
}

/** Signs and POSTs webhooks, once, and keeps the timers of scheduled ones so close() can stop them. */
export class WebhookSender {
  delivered = 0;
  failures = 0;
  private readonly inFlight = new Set<Promise<boolean>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly closing = new AbortController();

  constructor(
    private readonly secret: string,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** True when the receiver answered 2xx. Never rejects: a webhook must not fail the RPC behind it. */
  deliver(url: string, event: WebhookEvent): Promise<boolean> {
    const attempt = this.post(url, event);
    this.inFlight.add(attempt);
    void attempt.finally(() => this.inFlight.delete(attempt));
    return attempt;
  }

  /** Runs `send` after delayMs unless close() comes first; the timer does not keep the process alive. */
  schedule(delayMs: number, send: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      send();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  /** Resolves when no delivery is under way (scheduled ones not counted). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.closing.abort();
  }

  private async post(url: string, event: WebhookEvent): Promise<boolean> {
    if (this.closing.signal.aborted) return false;
    const body = JSON.stringify(event);
    // Not AbortSignal.any: tied to the long-lived closing signal, it would keep one signal per delivery.
    const signal = linkedSignal([AbortSignal.timeout(DELIVERY_TIMEOUT_MS), this.closing.signal]);
    try {
      const response = await this.fetchImpl(url, {
        method: 'POST',
        headers: {'content-type': 'application/json', [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(body, this.secret)},
        body,
        // A redirect could lead off the loopback host the URL was checked against.
        redirect: 'manual',
        signal: signal.signal,
      });
      // Nobody reads the answer; release the connection.
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) {
        this.delivered += 1;
        return true;
      }
    } catch {
      // Unreachable receiver, timeout or close(): counted below, like an error answer.
    } finally {
      signal.dispose();
    }
    this.failures += 1;
    return false;
  }
}
