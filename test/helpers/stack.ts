/**
 * The local stack for end-to-end tests: mock backends in this process on 127.0.0.1:0, gateways
 * pointed at them, and a REST client with deadlines and bearer tokens. Every request is bounded in
 * time, so a hang fails a test instead of stalling it.
 */
import {SignJWT} from 'jose';
import {startMock, type MockOptions} from '../../src/services/mocks/serve.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {startTestGateway, waitForReady, type TestGateway} from './gateway.js';
import {fetchJson, type Answer} from './http.js';
import {parseMetrics} from './metrics.js';

export type {Answer};

export const DEV_SECRET = 'tacos-dev-secret';
const REQUEST_TIMEOUT_MS = 10_000;

/** A mock backend on free loopback ports, logging nothing; `env` adds to its environment. */
export function startTestMock(
  name: 'reservation' | 'payment',
  options: MockOptions = {},
  env: Record<string, string> = {},
): Promise<RunningMock> {
  return startMock(
    name,
    {httpPort: 0, grpcPort: 0, ...options},
    {LOG_LEVEL: 'silent', SERVER_HOST: '127.0.0.1', ...env},
  );
}

/** The gateway's environment that points it at these mocks and this Redis. */
export function backendEnv(
  reservation: RunningMock,
  payment: RunningMock,
  redisAddress: string,
): Record<string, string> {
  return {
    REDIS_ADDRESS: redisAddress,
    BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${reservation.grpcPort}`,
    BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${reservation.httpPort}`,
    BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${payment.grpcPort}`,
    BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${payment.httpPort}`,
    // Admission without waiting or metering, so tests can enter as often as they need.
    QUEUE_INSTANT_ADMISSION_POSITIONS: '100',
    QUEUE_ADMISSION_BURST: '100000',
    QUEUE_ADMISSION_RATE: '100000',
    LOG_LEVEL: 'warn',
  };
}

/** A gateway on this stack, ready (its Redis answers). */
export async function startStackGateway(
  base: Record<string, string>,
  env: Record<string, string>,
): Promise<TestGateway> {
  const gateway = await startTestGateway({...base, ...env});
  try {
    await waitForReady(gateway);
  } catch (error) {
    await gateway.close();
    throw error;
  }
  return gateway;
}

/** An HS256 bearer token for `user`, signed as `tacos token` does with the development secret. */
export async function bearer(user: string, secret = DEV_SECRET, scope = 'reservations payments'): Promise<string> {
  const token = await new SignJWT({scope})
    .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
  return `Bearer ${token}`;
}

/** One REST request with a deadline; a JSON body when `body` is given. */
export async function send(
  base: string,
  method: string,
  pathname: string,
  options: {body?: unknown; auth?: string; headers?: Record<string, string>; timeoutMs?: number} = {},
): Promise<Answer> {
  const headers: Record<string, string> = {...options.headers};
  if (options.auth) headers.authorization = options.auth;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return fetchJson(`${base}${pathname}`, {
    method,
    headers,
    body: options.body,
    timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
  });
}

/** Joins the event's queue and enters at once: the single-use reservation token entry grants. */
export async function admit(base: string, eventId: string, userId: string): Promise<string> {
  const joined = await send(base, 'POST', '/api/v1/queue/join', {body: {event_id: eventId, user_id: userId}});
  if (joined.status !== 202) throw new Error(`join answered ${joined.status}: ${joined.text}`);
  const entered = await send(base, 'POST', '/api/v1/queue/enter', {body: {waiting_token: joined.json.waiting_token}});
  if (entered.status !== 200 || typeof entered.json?.reservation_token !== 'string')
    throw new Error(`enter answered ${entered.status}: ${entered.text}`);
  return entered.json.reservation_token as string;
}

export interface CallCounts {
  grpc: number;
  http: number;
}

/** mock_calls_total of a mock by protocol, for one method (or all when omitted), read from its /metrics. */
export async function mockCalls(mock: RunningMock, method?: string): Promise<CallCounts> {
  const response = await fetch(`http://127.0.0.1:${mock.httpPort}/metrics`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  const counts: CallCounts = {grpc: 0, http: 0};
  for (const sample of parseMetrics(text)) {
    if (sample.name !== 'mock_calls_total') continue;
    if (method !== undefined && sample.labels.method !== method) continue;
    const protocol = sample.labels.protocol as keyof CallCounts;
    if (protocol in counts) counts[protocol] += sample.value;
  }
  return counts;
}

export function callsSince(before: CallCounts, after: CallCounts): CallCounts {
  return {grpc: after.grpc - before.grpc, http: after.http - before.http};
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` in flight; results in order. */
export async function bounded<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({length: Math.min(concurrency, count)}, worker));
  return results;
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
