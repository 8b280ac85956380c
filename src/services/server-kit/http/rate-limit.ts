import {BlockList, isIP} from 'node:net';
import type {IncomingMessage} from 'node:http';
import {TacosError} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';

export interface RateLimitSettings {
  enabled: boolean;
  /** Tokens added per second (X-RateLimit-Limit). */
  ratePerSecond: number;
  /** Bucket capacity: the burst a client may send at once. */
  burst: number;
  /** Peers whose X-Forwarded-For is believed (IPs or CIDRs); nobody else picks their own bucket. */
  trustedProxies: string[];
}

/** What one request is told: the X-RateLimit-* headers, and the refusal when its bucket is empty. */
export interface RateDecision {
  headers: Record<string, string>;
  refusal?: TacosError;
}

/** The rate limit of the REST door, as the HTTP server kit calls it for every `/api/v1` request. */
export interface RequestLimiter {
  check(request: IncomingMessage): Promise<RateDecision>;
}

const KEY_PREFIX = 'tacos:ratelimit:';
/** A failing Redis is logged at most this often: every request would otherwise log it. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

// Token bucket in one round trip. Redis's clock, so that several gateways share one bucket per
// client; the key lives until the bucket would be full again, so an idle client leaves no key.
// Returns: allowed (1/0), whole tokens left, ms until full, ms until one token.
const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or nowMs
tokens = math.min(burst, tokens + math.max(0, nowMs - at) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local untilFull = math.ceil((burst - tokens) * 1000 / rate)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', nowMs)
redis.call('PEXPIRE', KEYS[1], untilFull + 1000)
local untilOne = 0
if tokens < 1 then untilOne = math.ceil((1 - tokens) * 1000 / rate) end
return {allowed, math.floor(tokens), untilFull, untilOne}
`;

type TakeReply = [number, number, number, number];
type LimitedRedis = RedisClient & {tacosRateLimitTake(key: string, rate: number, burst: number): Promise<TakeReply>};

/**
 * Per-client token buckets in Redis (test/fixtures/contracts/REST.md 0.4), keyed by the client's address. Unlike the Go
 * gateway, X-Forwarded-For counts only from a configured proxy: any client could name its own
 * bucket otherwise. A Redis failure lets the request through: the limit protects the gateway, it
 * must not become the outage.
 */
export class RedisRateLimiter implements RequestLimiter {
  private readonly proxies = new BlockList();
  private readonly redis: LimitedRedis;
  private lastFailureLog = 0;

  constructor(
    redis: RedisClient,
    private readonly settings: RateLimitSettings,
    private readonly logger: Logger,
  ) {
    for (const entry of settings.trustedProxies) addProxy(this.proxies, entry);
    if (!('tacosRateLimitTake' in redis))
      redis.defineCommand('tacosRateLimitTake', {numberOfKeys: 1, lua: TAKE_SCRIPT});
    this.redis = redis as LimitedRedis;
  }

  async check(request: IncomingMessage): Promise<RateDecision> {
    let reply: TakeReply;
    try {
      reply = await this.redis.tacosRateLimitTake(
        KEY_PREFIX + this.clientOf(request),
        this.settings.ratePerSecond,
        this.settings.burst,
      );
    } catch (error) {
      this.logFailure(error);
      return {headers: {}};
    }
    const [allowed, remaining, untilFullMs, untilOneMs] = reply;
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(this.settings.ratePerSecond),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': String(Math.ceil((Date.now() + untilFullMs) / 1000)),
      'x-ratelimit-window': '1s',
    };
    if (allowed === 1) return {headers};
    const retryAfter = Math.max(1, Math.ceil(untilOneMs / 1000));
    headers['retry-after'] = String(retryAfter);
    return {
      headers,
      refusal: new TacosError(
        `Too many requests from this client: the limit is ${this.settings.ratePerSecond} per second (bursts of ${this.settings.burst}).`,
        {
          code: 'RATE_LIMITED',
          hint: `Retry after ${retryAfter} s.`,
        },
      ),
    };
  }

  /** The client's address: the socket's, or, from a trusted proxy, the right-most untrusted X-Forwarded-For hop. */
  clientOf(request: IncomingMessage): string {
    let client = normalAddress(request.socket.remoteAddress ?? '');
    if (!this.trusted(client)) return client;
    const header = request.headers['x-forwarded-for'];
    const hops = [header ?? []]
      .flat()
      .join(',')
      .split(',')
      .map((hop) => normalAddress(hop.trim()))
      .filter((hop) => isIP(hop) !== 0);
    while (hops.length > 0 && this.trusted(client)) client = hops.pop() as string;
    return client;
  }

  private trusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.proxies.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  private logFailure(error: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.lastFailureLog = now;
    this.logger.warn(
      {err: error instanceof Error ? error.message : String(error)},
      'rate limit unavailable (Redis): requests pass unlimited',
    );
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function normalAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** An IP address or CIDR (`10.0.0.5`, `10.1.0.0/16`, `::1`): what TRUSTED_PROXIES lists. */
export function isProxyEntry(entry: string): boolean {
  const [address, bits, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
}

function addProxy(list: BlockList, entry: string): void {
  const [address, bits] = entry.split('/') as [string, string | undefined];
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(address, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
}
