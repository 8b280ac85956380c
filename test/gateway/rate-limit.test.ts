/**
 * The per-client rate limit of the REST door (test/fixtures/contracts/REST.md 0.4), as a client sees it: the X-RateLimit-*
 * headers, 429 RATE_LIMITED with Retry-After once the burst is spent, refill, on by default only in
 * production, X-Forwarded-For believed only from a trusted proxy, and a Redis outage that lets
 * requests through. A real redis-server on a free port; gateways in this process on 127.0.0.1:0.
 */
import {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

let redis: RedisProcess;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await disposeRedis(redis);
});

async function gateway(env: Record<string, string>, on: RedisProcess = redis): Promise<TestGateway> {
  const started = await startTestGateway({
    REDIS_ADDRESS: on.address,
    SERVER_ENVIRONMENT: 'development',
    LOG_LEVEL: 'warn',
    ...env,
  });
  gateways.push(started);
  await waitForReady(started);
  return started;
}

/** A limited gateway that believes loopback's X-Forwarded-For, so each test picks its own bucket. */
const LIMITED = {RATE_LIMIT_ENABLED: 'true', TRUSTED_PROXIES: '127.0.0.1,::1'};
const stats = (base: string, client: string) =>
  getJson(`${base}/api/v1/queue/stats`, {headers: {'x-forwarded-for': client}});

describe('the rate limit', () => {
  let slow: TestGateway;

  beforeAll(async () => {
    // Almost no refill: what a test spends stays spent while it looks.
    slow = await gateway({...LIMITED, RATE_LIMIT_RPS: '0.01', RATE_LIMIT_BURST: '3'});
  });

  it('counts down in X-RateLimit-Remaining, then answers 429 RATE_LIMITED with Retry-After', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await stats(slow.http, '203.0.113.1');
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-ratelimit-limit')).toBe('0.01');
      expect(answer.headers.get('x-ratelimit-window')).toBe('1s');
      expect(Number(answer.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
      remaining.push(answer.headers.get('x-ratelimit-remaining') ?? '');
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const refused = await stats(slow.http, '203.0.113.1');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(refused.body.error.message).toMatch(/Too many requests/);
    expect(refused.body.error.trace_id).toBe(refused.headers.get('x-request-id'));
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('limits the join served from node:http directly too, and stores nothing for a refused join', async () => {
    const client = {'x-forwarded-for': '203.0.113.2'};
    for (let i = 0; i < 3; i++) await stats(slow.http, '203.0.113.2');
    const refused = await postJson(`${slow.http}/api/v1/queue/join`, {event_id: 'evt_limited'}, client);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const {body} = await stats(slow.http, '203.0.113.3');
    expect(body.events.find((event: {event_id: string}) => event.event_id === 'evt_limited')).toBeUndefined();
  });

  it('does not count preflights, health, metrics or version, and keeps answering them when the bucket is empty', async () => {
    for (let i = 0; i < 4; i++) await stats(slow.http, '127.0.0.1');
    const preflight = await fetch(`${slow.http}/api/v1/queue/join`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(204);
    for (const path of ['/healthz', '/readyz', '/version', '/metrics']) {
      const response = await fetch(`${slow.http}${path}`);
      await response.arrayBuffer();
      expect(response.status, path).toBe(200);
      expect(response.headers.get('x-ratelimit-limit'), path).toBeNull();
    }
  });

  it('believes only the right-most hop a trusted proxy added: a client cannot pick its own bucket', async () => {
    for (let i = 0; i < 3; i++) await stats(slow.http, '203.0.113.4');
    // The client wrote 198.51.100.9 itself; the proxy appended the address it saw.
    const spoofed = await stats(slow.http, '198.51.100.9, 203.0.113.4');
    expect(spoofed.status).toBe(429);
    const other = await stats(slow.http, '203.0.113.5');
    expect(other.status).toBe(200);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    // Its own Redis database: this bucket is the socket's address, which other tests here spend too.
    const direct = await gateway({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_RPS: '0.01',
      RATE_LIMIT_BURST: '2',
      REDIS_DATABASE: '2',
    });
    const statuses: number[] = [];
    for (const client of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      statuses.push((await stats(direct.http, client)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('refills at RATE_LIMIT_RPS: one token after 1/RPS seconds', async () => {
    const fast = await gateway({...LIMITED, RATE_LIMIT_RPS: '20', RATE_LIMIT_BURST: '1'});
    expect((await stats(fast.http, '203.0.113.6')).status).toBe(200);
    const refused = await stats(fast.http, '203.0.113.6');
    expect(refused.status).toBe(429);
    // One token takes 50 ms at 20 per second; twice that leaves room for a slow machine.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await stats(fast.http, '203.0.113.6')).status).toBe(200);
  });

  it('keeps a bucket in Redis only until it would be full again (an idle client leaves no key)', async () => {
    await stats(slow.http, '203.0.113.7');
    const client = new Redis({port: redis.port, host: '127.0.0.1'});
    try {
      const ttl = await client.pttl('tacos:ratelimit:203.0.113.7');
      // One token spent at 0.01 per second: full again in 100 s (plus a second of slack).
      expect(ttl).toBeGreaterThan(90_000);
      expect(ttl).toBeLessThanOrEqual(101_000);
    } finally {
      client.disconnect();
    }
  });

  it('lets requests through, unlimited and logged, while its Redis is away', async () => {
    const own = await startRedis();
    try {
      const alone = await gateway({...LIMITED, REDIS_COMMAND_TIMEOUT: '200ms'}, own);
      await own.stop();
      const answer = await getJson(`${alone.http}/api/v1/no-such-route`);
      expect(answer.status).toBe(404);
      expect(answer.headers.get('x-ratelimit-limit')).toBeNull();
      expect(alone.logs.some((line) => line.msg === 'rate limit unavailable (Redis): requests pass unlimited')).toBe(
        true,
      );
    } finally {
      await disposeRedis(own);
    }
  });
});

describe('the rate limit settings', () => {
  it('are on by default in production and off in development; RATE_LIMIT_ENABLED wins either way', () => {
    expect(readGatewayConfig({SERVER_ENVIRONMENT: 'production'}).rateLimit.enabled).toBe(true);
    expect(readGatewayConfig({SERVER_ENVIRONMENT: 'development'}).rateLimit.enabled).toBe(false);
    expect(readGatewayConfig({}).rateLimit.enabled).toBe(false);
    expect(readGatewayConfig({SERVER_ENVIRONMENT: 'production', RATE_LIMIT_ENABLED: 'false'}).rateLimit.enabled).toBe(
      false,
    );
    expect(readGatewayConfig({SERVER_ENVIRONMENT: 'development', RATE_LIMIT_ENABLED: 'true'}).rateLimit).toMatchObject({
      enabled: true,
      ratePerSecond: 50,
      burst: 100,
    });
  });

  it('refuse a TRUSTED_PROXIES entry that is not an address or CIDR, naming it', () => {
    expect(readGatewayConfig({TRUSTED_PROXIES: '10.0.0.5, 10.1.0.0/16,::1'}).rateLimit.trustedProxies).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      '::1',
    ]);
    expect(() => readGatewayConfig({TRUSTED_PROXIES: '10.0.0.5,proxy.internal'})).toThrow(
      /TRUSTED_PROXIES=.*not "proxy\.internal"/,
    );
    expect(() => readGatewayConfig({TRUSTED_PROXIES: '10.0.0.0/33'})).toThrow(/TRUSTED_PROXIES/);
    expect(() => readGatewayConfig({RATE_LIMIT_BURST: '0'})).toThrow(/RATE_LIMIT_BURST/);
  });

  it('development gateways answer without X-RateLimit-* headers', async () => {
    const open = await gateway({});
    const answer = await stats(open.http, '203.0.113.8');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('a production gateway limits with the defaults (50 per second, bursts of 100)', async () => {
    const production = await gateway({
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: 'a-production-secret-of-enough-length',
      REDIS_DATABASE: '1',
    });
    const answer = await stats(production.http, '203.0.113.9');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-ratelimit-limit')).toBe('50');
    expect(answer.headers.get('x-ratelimit-remaining')).toBe('99');
  });
});
