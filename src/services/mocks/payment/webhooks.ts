import {createHmac} from 'node:crypto';
import type {LookupAddress} from 'node:dns';
import {lookup} from 'node:dns/promises';
import {isIP, type LookupFunction} from 'node:net';
import ipaddr from 'ipaddr.js';
import {Agent, fetch as undiciFetch} from 'undici';
import {invalidArgument} from '../../server-kit/api-errors.js';
import type {TacosError} from '../../errors.js';
import {linkedSignal} from '../linked-signal.js';

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

/** Every address a host name resolves to, as dns.lookup with `all` answers. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

const resolveWithDns: ResolveHost = (hostname) => lookup(hostname, {all: true, verbatim: true});

export interface WebhookTargetOptions {
  /** Host names, IP addresses and CIDR ranges webhooks may go to, loopback and private ones included. */
  allowHosts: string[];
  /** Any host whose addresses are all public (globally routable unicast). */
  allowAnyPublicHost: boolean;
  resolve?: ResolveHost;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A PAYMENT_WEBHOOK_ALLOW_HOSTS entry: a host name, an IP address in any form, or a CIDR range. */
export function isWebhookHostEntry(entry: string): boolean {
  return (
    ipaddr.isValidCIDR(entry) ||
    ipaddr.isValid(bare(entry)) ||
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(entry)
  );
}

const NOT_PUBLIC: Partial<Record<string, string>> = {
  loopback: 'a loopback',
  private: 'a private',
  uniqueLocal: 'a private',
  linkLocal: 'a link-local',
  unspecified: 'an unspecified',
  multicast: 'a multicast',
  broadcast: 'a broadcast',
};

/**
 * Where the payment mock may POST webhooks. A development mock that posts wherever a request says
 * would let any caller reach the services of this machine and its network, whatever form the
 * address takes (127.1, 2130706433, [::ffff:127.0.0.1], a name resolving to 10.0.0.1): every
 * address is checked after resolution, and only public ones pass unless listed. The connection
 * uses the addresses checked (`lookup`), so a name cannot resolve elsewhere between check and POST.
 */
export class WebhookTargets {
  private readonly names = new Set<string>();
  private readonly ranges: Range[] = [];
  private readonly resolve: ResolveHost;

  constructor(private readonly options: WebhookTargetOptions) {
    this.resolve = options.resolve ?? resolveWithDns;
    for (const entry of options.allowHosts) {
      const address = bare(entry);
      if (ipaddr.isValidCIDR(entry)) this.ranges.push(ipaddr.parseCIDR(entry));
      else if (ipaddr.isValid(address)) this.ranges.push(singleAddress(ipaddr.process(address)));
      else this.names.add(nameOf(entry));
    }
  }

  /** The URL, when webhooks may go there; INVALID_ARGUMENT on webhook_url when not. */
  async check(url: string): Promise<URL> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidArgument('webhook_url', `webhook_url is not a valid URL: ${JSON.stringify(url)}.`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw invalidArgument('webhook_url', `webhook_url must be an http:// or https:// URL (got ${parsed.protocol}).`);
    }
    const host = bare(parsed.hostname);
    if (this.names.has(nameOf(host))) return parsed;
    // The URL parser has already turned every numeric form of an IPv4 address into a.b.c.d.
    if (isIP(host)) this.checkAddress(host, host, false);
    else if (!this.options.allowAnyPublicHost && this.ranges.length === 0) throw refused(host, 'is not one');
    else await this.resolveChecked(host);
    return parsed;
  }

  /** dns.lookup for the webhook connections: they go only to addresses that passed the check. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolveChecked(bare(hostname)).then(
      (addresses) =>
        options.all ? callback(null, addresses) : callback(null, addresses[0].address, addresses[0].family),
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };

  private async resolveChecked(host: string): Promise<LookupAddress[]> {
    let addresses: LookupAddress[];
    try {
      addresses = await this.resolve(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) throw invalidArgument('webhook_url', `webhook_url's host ${host} cannot be resolved.`);
    if (!this.names.has(nameOf(host))) for (const {address} of addresses) this.checkAddress(host, address, true);
    return addresses;
  }

  private checkAddress(host: string, address: string, resolved: boolean): void {
    const parsed = ipaddr.process(address);
    if (this.ranges.some((range) => parsed.kind() === range[0].kind() && parsed.match(range))) return;
    const range = parsed.range();
    if (range === 'unicast' && this.options.allowAnyPublicHost) return;
    const verb = resolved ? 'resolves to' : 'is';
    throw refused(
      host,
      range === 'unicast' ? 'is not one' : `${verb} ${NOT_PUBLIC[range] ?? 'a reserved'} address, not one`,
    );
  }
}

function refused(host: string, why: string): TacosError {
  return invalidArgument(
    'webhook_url',
    `webhook_url's host ${host} ${why} the payment mock posts to: list it in PAYMENT_WEBHOOK_ALLOW_HOSTS (or, for public hosts, set PAYMENT_WEBHOOK_ALLOW_ANY_HOST=true).`,
  );
}

/** Without IPv6 brackets. */
function bare(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

/** A host name as compared: lower case, without the root's trailing dot. */
function nameOf(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function singleAddress(address: ipaddr.IPv4 | ipaddr.IPv6): Range {
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

/** undici's fetch, or a stand-in for tests. */
export type WebhookFetch = typeof undiciFetch;

/** Signs and POSTs webhooks, once, and keeps the timers of scheduled ones so close() can stop them. */
export class WebhookSender {
  delivered = 0;
  failures = 0;
  private readonly inFlight = new Set<Promise<boolean>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly closing = new AbortController();

  private readonly agent: Agent;

  constructor(
    private readonly secret: string,
    private readonly targets: WebhookTargets,
    private readonly fetchImpl: WebhookFetch = undiciFetch,
  ) {
    this.agent = new Agent({connect: {lookup: targets.lookup}});
  }

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
    void this.agent.destroy();
  }

  private async post(url: string, event: WebhookEvent): Promise<boolean> {
    if (this.closing.signal.aborted) return false;
    const body = JSON.stringify(event);
    // Not AbortSignal.any: tied to the long-lived closing signal, it would keep one signal per delivery.
    const signal = linkedSignal([AbortSignal.timeout(DELIVERY_TIMEOUT_MS), this.closing.signal]);
    try {
      // Again at delivery: a URL naming an address connects without a lookup.
      await this.targets.check(url);
      const response = await this.fetchImpl(url, {
        method: 'POST',
        headers: {'content-type': 'application/json', [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(body, this.secret)},
        body,
        // A redirect could lead off the host the URL was checked against.
        redirect: 'manual',
        signal: signal.signal,
        dispatcher: this.agent,
      });
      // Nobody reads the answer; release the connection.
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) {
        this.delivered += 1;
        return true;
      }
    } catch {
      // A refused or unreachable receiver, timeout or close(): counted below, like an error answer.
    } finally {
      signal.dispose();
    }
    this.failures += 1;
    return false;
  }
}
