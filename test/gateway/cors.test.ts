/**
 * CORS as the web client's browser does it (test/fixtures/contracts/REST.md 3.2): its dev server's origin and its headers
 * pass a real preflight on every route it calls; production answers only the origins it lists.
 * A real redis-server on a free port; gateways in this process on 127.0.0.1:0.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {getJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

const CLIENT_ORIGIN = 'http://localhost:3000';
/** What the client sends on a logged-in POST, as a browser lists it in the preflight. */
const CLIENT_HEADERS = 'authorization,content-type,idempotency-key,x-trace-id';

let redis: RedisProcess;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await disposeRedis(redis);
});

async function gateway(env: Record<string, string>): Promise<TestGateway> {
  const started = await startTestGateway({REDIS_ADDRESS: redis.address, LOG_LEVEL: 'warn', ...env});
  gateways.push(started);
  await waitForReady(started);
  return started;
}

function preflight(base: string, path: string, method: string, origin = CLIENT_ORIGIN) {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {origin, 'access-control-request-method': method, 'access-control-request-headers': CLIENT_HEADERS},
  });
}

const list = (value: string | null) => (value ?? '').toLowerCase().split(/\s*,\s*/);

describe('CORS for the web client', () => {
  let development: TestGateway;
  let production: TestGateway;

  beforeAll(async () => {
    [development, production] = await Promise.all([
      gateway({SERVER_ENVIRONMENT: 'development', RATE_LIMIT_ENABLED: 'true'}),
      gateway({
        SERVER_ENVIRONMENT: 'production',
        JWT_SECRET: 'a-production-secret-of-enough-length',
        CORS_ALLOW_ORIGINS: CLIENT_ORIGIN,
        REDIS_DATABASE: '1',
      }),
    ]);
  });

  const calls: Array<[string, string]> = [
    ['/api/v1/auth/login', 'POST'],
    ['/api/v1/queue/join', 'POST'],
    ['/api/v1/queue/status?token=t', 'GET'],
    ['/api/v1/queue/enter', 'POST'],
    ['/api/v1/queue/leave?token=t', 'DELETE'],
    ['/api/v1/reservations', 'POST'],
    ['/api/v1/payments/intent', 'POST'],
  ];

  it.each(calls)('passes the browser preflight of %s (%s) with the client headers', async (path, method) => {
    for (const target of [development, production]) {
      const response = await preflight(target.http, path, method);
      expect(response.status).toBe(204);
      expect(['*', CLIENT_ORIGIN]).toContain(response.headers.get('access-control-allow-origin'));
      expect(list(response.headers.get('access-control-allow-methods'))).toEqual(
        expect.arrayContaining(['get', 'post', 'delete']),
      );
      expect(list(response.headers.get('access-control-allow-headers'))).toEqual(
        expect.arrayContaining(CLIENT_HEADERS.split(',')),
      );
      expect(response.headers.get('access-control-max-age')).toBe('86400');
    }
  });

  it('lets a page read the X-RateLimit-* headers and Retry-After of an answer', async () => {
    const answer = await getJson(`${development.http}/api/v1/queue/stats`, {headers: {origin: CLIENT_ORIGIN}});
    expect(answer.headers.get('x-ratelimit-remaining')).not.toBeNull();
    expect(list(answer.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining([
        'x-ratelimit-limit',
        'x-ratelimit-remaining',
        'x-ratelimit-reset',
        'retry-after',
        'x-request-id',
      ]),
    );
  });

  it('in production answers only the listed origins, echoing the origin', async () => {
    const listed = await getJson(`${production.http}/healthz`, {headers: {origin: CLIENT_ORIGIN}});
    expect(listed.headers.get('access-control-allow-origin')).toBe(CLIENT_ORIGIN);
    const other = await preflight(production.http, '/api/v1/queue/join', 'POST', 'http://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('in production without CORS_ALLOW_ORIGINS allows no origin at all (closed by default)', async () => {
    const closed = await gateway({
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: 'a-production-secret-of-enough-length',
      REDIS_DATABASE: '2',
    });
    const response = await preflight(closed.http, '/api/v1/queue/join', 'POST');
    await response.arrayBuffer();
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a CORS_ALLOW_ORIGINS entry that is not an origin, naming it', () => {
    expect(
      readGatewayConfig({CORS_ALLOW_ORIGINS: 'http://localhost:3000, https://tickets.example'}).corsOrigins,
    ).toEqual(['http://localhost:3000', 'https://tickets.example']);
    expect(() => readGatewayConfig({CORS_ALLOW_ORIGINS: 'http://localhost:3000/app'})).toThrow(
      /CORS_ALLOW_ORIGINS=.*not "http:\/\/localhost:3000\/app"/,
    );
    expect(() => readGatewayConfig({CORS_ALLOW_ORIGINS: 'localhost:3000'})).toThrow(/CORS_ALLOW_ORIGINS/);
  });
});
