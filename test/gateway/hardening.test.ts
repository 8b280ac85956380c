/**
 * What the review of the gateway (issue 2) added, as a client notices it: CORS for browsers, the
 * development bypass token only in development, metered admission even for the first ten, the same
 * validation on both doors, idle events leaving the registry, and the error envelope while closing.
 * A real redis-server on a free port; gateways in this process on 127.0.0.1:0; a reservation mock
 * as the backend.
 */
import {once} from 'node:events';
import {connect, type Socket} from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {startMock} from '../../src/services/mocks/serve.js';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, freePort, startRedis, type RedisProcess} from '../helpers/redis.js';

type AnyClient = grpc.Client & Record<string, any>;
type Json = Record<string, any>;

const DEV_TOKEN = 'tacos-dev-token';
const BROWSER_ORIGIN = 'http://localhost:3000';

let redis: RedisProcess;
let backend: RunningMock;
let unusedPort: number;
const gateways: TestGateway[] = [];
const clients: AnyClient[] = [];
const redisClients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  backend = await startMock('reservation', {httpPort: 0, grpcPort: 0}, {LOG_LEVEL: 'warn'});
  unusedPort = await freePort();
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const client of redisClients) client.disconnect();
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await backend?.close();
  await backend?.close();
  await disposeRedis(redis);
});

/** A gateway on this file's Redis, calling the reservation mock (payment: a port nobody listens on). */
async function gateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const started = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${backend.grpcPort}`,
    BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${backend.httpPort}`,
    BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${unusedPort}`,
    BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${unusedPort}`,
    ...env,
  });
  gateways.push(started);
  await waitForReady(started);
  return started;
}

async function client(service: string, address: string): Promise<AnyClient> {
  const created = await contractClient(service, address);
  clients.push(created);
  return created;
}

/** A gRPC call that never rejects: the answer or the error. */
async function outcome(promise: Promise<Json>): Promise<{response?: Json; error?: grpc.ServiceError}> {
  try {
    return {response: await promise};
  } catch (error) {
    return {error: error as grpc.ServiceError};
  }
}

function metadata(entries: Record<string, string>): grpc.Metadata {
  const result = new grpc.Metadata();
  for (const [key, value] of Object.entries(entries)) result.set(key, value);
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('CORS', () => {
  let open: TestGateway;
  let restricted: TestGateway;

  beforeAll(async () => {
    [open, restricted] = await Promise.all([gateway(), gateway({CORS_ALLOW_ORIGINS: 'http://a.example'})]);
  });

  const preflight = (base: string, origin: string) =>
    fetch(`${base}/api/v1/queue/join`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,idempotency-key',
      },
    });

  it('answers a browser preflight for join with 204, the origin allowed and Idempotency-Key among the allowed headers', async () => {
    const response = await preflight(open.http, BROWSER_ORIGIN);
    expect(response.status).toBe(204);
    expect(['*', BROWSER_ORIGIN]).toContain(response.headers.get('access-control-allow-origin'));
    expect(response.headers.get('access-control-allow-methods') ?? '').toMatch(/POST/);
    const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'idempotency-key']));
  });

  it('lets the browser read X-Request-ID of a normal response (access-control-expose-headers)', async () => {
    const joined = await postJson(`${open.http}/api/v1/queue/join`, {event_id: 'evt_cors'}, {origin: BROWSER_ORIGIN});
    expect(joined.status).toBe(202);
    expect(joined.headers.get('x-request-id')).toBeTruthy();
    expect(['*', BROWSER_ORIGIN]).toContain(joined.headers.get('access-control-allow-origin'));
    const exposed = (joined.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(exposed).toContain('x-request-id');
    // Errors too: the browser must read the request id of a failure to report it.
    const refused = await postJson(`${open.http}/api/v1/queue/join`, {}, {origin: BROWSER_ORIGIN});
    expect(refused.status).toBe(400);
    expect((refused.headers.get('access-control-expose-headers') ?? '').toLowerCase()).toContain('x-request-id');
  });

  it('with CORS_ALLOW_ORIGINS=http://a.example allows that origin only', async () => {
    const allowed = await preflight(restricted.http, 'http://a.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://a.example');

    const other = await preflight(restricted.http, BROWSER_ORIGIN);
    const otherOrigin = other.headers.get('access-control-allow-origin');
    expect(
      otherOrigin === null || (otherOrigin !== '*' && otherOrigin !== BROWSER_ORIGIN),
      `allow-origin: ${otherOrigin}`,
    ).toBe(true);

    const joined = await postJson(
      `${restricted.http}/api/v1/queue/join`,
      {event_id: 'evt_cors'},
      {origin: BROWSER_ORIGIN},
    );
    const joinedOrigin = joined.headers.get('access-control-allow-origin');
    expect(
      joinedOrigin === null || (joinedOrigin !== '*' && joinedOrigin !== BROWSER_ORIGIN),
      `allow-origin: ${joinedOrigin}`,
    ).toBe(true);
  });

  it('gives a join (served from node:http directly) the CORS headers @fastify/cors gives other routes', async () => {
    const corsHeaders = (headers: Headers) =>
      Object.fromEntries([...headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary'));
    for (const [base, origin] of [
      [restricted.http, 'http://a.example'],
      [restricted.http, BROWSER_ORIGIN],
      [open.http, BROWSER_ORIGIN],
    ]) {
      const joined = await postJson(`${base}/api/v1/queue/join`, {event_id: 'evt_cors'}, {origin});
      const entered = await postJson(`${base}/api/v1/queue/enter`, {waiting_token: 'garbage'}, {origin});
      expect([joined.status, entered.status]).toEqual([202, 404]);
      expect(corsHeaders(joined.headers), `${base} ${origin}`).toEqual(corsHeaders(entered.headers));
      expect(corsHeaders(joined.headers)['access-control-expose-headers']).toMatch(/X-Request-ID/);
    }
  });
});

describe('the development bypass token', () => {
  async function tryBypass(environment: string) {
    // Outside development a gateway needs a key to start (and the bypass token then still must not pass).
    const started = await gateway({SERVER_ENVIRONMENT: environment, JWT_SECRET: 'bypass-test-secret-0123456789abcdef'});
    const service = await client('gateway.v1.GatewayService', started.grpc);
    const overGrpc = await outcome(
      unaryCall(
        service,
        'GetReservation',
        {reservation_id: 'rsv_nobody'},
        metadata({authorization: `Bearer ${DEV_TOKEN}`}),
      ),
    );
    const overRest = await getJson(`${started.http}/api/v1/reservations/rsv_nobody`, {
      headers: {authorization: `Bearer ${DEV_TOKEN}`},
    });
    return {grpcCode: overGrpc.error?.code ?? grpc.status.OK, restStatus: overRest.status, restBody: overRest.body};
  }

  it.each(['prod', 'Production', 'PRODUCTION', 'staging'])(
    'is refused when SERVER_ENVIRONMENT=%s (UNAUTHENTICATED / 401)',
    async (environment) => {
      const result = await tryBypass(environment);
      expect(result.grpcCode).toBe(grpc.status.UNAUTHENTICATED);
      expect(result.restStatus).toBe(401);
      expect(result.restBody.error?.code).toBe('UNAUTHENTICATED');
    },
  );

  it('is accepted when SERVER_ENVIRONMENT=local: the call reaches the backend (NOT_FOUND / 404 for an unknown reservation)', async () => {
    const result = await tryBypass('local');
    expect(result.grpcCode).not.toBe(grpc.status.UNAUTHENTICATED);
    expect(result.grpcCode).toBe(grpc.status.NOT_FOUND);
    expect(result.restStatus).toBe(404);
    expect(result.restBody.error?.code).toBe('NOT_FOUND');
  });
});

describe('admission metering (QUEUE_ADMISSION_BURST=3, QUEUE_ADMISSION_RATE=0.001)', () => {
  it('lets only 3 of the 10 at positions 1-10 in at once; the rest get 403 NOT_READY with Retry-After and read ready_for_entry false', async () => {
    const metered = await gateway({QUEUE_ADMISSION_BURST: '3', QUEUE_ADMISSION_RATE: '0.001'});
    const tokens: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const joined = await postJson(`${metered.http}/api/v1/queue/join`, {event_id: 'evt_metered', user_id: `u${i}`});
      expect(joined.body.position_hint).toBe(i);
      tokens.push(joined.body.waiting_token);
    }
    // Polling status never takes a bucket token.
    for (let round = 0; round < 3; round++) {
      for (const token of tokens)
        expect((await getJson(`${metered.http}/api/v1/queue/status?token=${token}`)).status).toBe(200);
    }

    const entries = await Promise.all(
      tokens.map((token) => postJson(`${metered.http}/api/v1/queue/enter`, {waiting_token: token})),
    );
    const granted = entries.filter((entry) => entry.status === 200);
    const denied = entries
      .map((entry, index) => ({entry, token: tokens[index]}))
      .filter(({entry}) => entry.status !== 200);
    expect(granted.length).toBe(3);
    for (const entry of granted)
      expect(entry.body).toMatchObject({admission: 'granted', reservation_token: expect.any(String)});
    expect(denied.length).toBe(7);
    for (const {entry, token} of denied) {
      expect(entry.status).toBe(403);
      expect(entry.body.error?.code).toBe('NOT_READY');
      const retryAfter = Number(entry.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After: ${entry.headers.get('retry-after')}`).toBe(
        true,
      );
      const status = await getJson(`${metered.http}/api/v1/queue/status?token=${token}`);
      expect(status.body).toMatchObject({status: 'waiting', ready_for_entry: false});
      expect(status.body.position).toBeGreaterThanOrEqual(1);
      expect(status.body.position).toBeLessThanOrEqual(7);
    }
    // Trying again at once changes nothing: the bucket refills at 0.001 per second.
    const again = await postJson(`${metered.http}/api/v1/queue/enter`, {waiting_token: denied[0].token});
    expect(again.status).toBe(403);
  });
});

describe('validation is the same on both doors', () => {
  let door: TestGateway;
  let queue: AnyClient;

  beforeAll(async () => {
    door = await gateway();
    queue = await client('gateway.v1.QueueService', door.grpc);
  });

  it('a 200-character user_id: 400 over REST, INVALID_ARGUMENT over gRPC, and nobody joined', async () => {
    const rest = await postJson(`${door.http}/api/v1/queue/join`, {
      event_id: 'evt_valid_user',
      user_id: 'u'.repeat(200),
    });
    expect(rest.status).toBe(400);
    expect(rest.body.error).toMatchObject({code: 'INVALID_ARGUMENT', field: 'user_id'});
    const overGrpc = await outcome(
      unaryCall(queue, 'JoinQueue', {event_id: 'evt_valid_user', user_id: 'u'.repeat(200)}),
    );
    expect(overGrpc.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(overGrpc.error?.details).toMatch(/user_id/);

    const fine = await postJson(`${door.http}/api/v1/queue/join`, {
      event_id: 'evt_valid_user',
      user_id: 'u'.repeat(128),
    });
    expect(fine.status).toBe(202);
    expect(fine.body.position_hint).toBe(1);
  });

  it('a 300-character Idempotency-Key: 400 over REST, INVALID_ARGUMENT over gRPC metadata, and nobody joined', async () => {
    const key = 'k'.repeat(300);
    const rest = await postJson(
      `${door.http}/api/v1/queue/join`,
      {event_id: 'evt_valid_key'},
      {'idempotency-key': key},
    );
    expect(rest.status).toBe(400);
    expect(rest.body.error?.code).toBe('INVALID_ARGUMENT');
    expect(`${rest.body.error?.field} ${rest.body.error?.message}`).toMatch(/idempotency/i);
    const overGrpc = await outcome(
      unaryCall(queue, 'JoinQueue', {event_id: 'evt_valid_key'}, metadata({'idempotency-key': key})),
    );
    expect(overGrpc.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(overGrpc.error?.details).toMatch(/idempotency/i);

    const fine = await unaryCall(
      queue,
      'JoinQueue',
      {event_id: 'evt_valid_key'},
      metadata({'idempotency-key': 'k'.repeat(255)}),
    );
    expect(fine.position_hint).toBe(1);
  });
});

describe('event registry pruning (QUEUE_TOKEN_RETENTION=1s, QUEUE_HEARTBEAT_TTL=500ms, QUEUE_SWEEP_INTERVAL=200ms)', () => {
  let pruning: TestGateway;
  let store: Redis;

  beforeAll(async () => {
    // Its own Redis database: this gateway's fast sweep must not prune the other tests' events.
    pruning = await gateway({
      REDIS_DATABASE: '1',
      QUEUE_TOKEN_RETENTION: '1s',
      QUEUE_HEARTBEAT_TTL: '500ms',
      QUEUE_SWEEP_INTERVAL: '200ms',
    });
    store = new Redis({host: '127.0.0.1', port: redis.port, db: 1, lazyConnect: true, maxRetriesPerRequest: 1});
    redisClients.push(store);
    await store.connect();
  });

  const join = async (eventId: string) => {
    const joined = await postJson(`${pruning.http}/api/v1/queue/join`, {event_id: eventId});
    expect(joined.status).toBe(202);
    return joined.body.waiting_token as string;
  };
  const status = async (token: string) => (await getJson(`${pruning.http}/api/v1/queue/status?token=${token}`)).body;
  const listed = async () =>
    ((await getJson(`${pruning.http}/api/v1/queue/stats`)).body.events as Json[]).map(
      (event) => event.event_id as string,
    );
  const waitingIn = async (eventId: string) =>
    ((await getJson(`${pruning.http}/api/v1/queue/stats?event_id=${eventId}`)).body.events as Json[])[0]?.total_waiting;

  it('drops an event whose only member expired (its keys expire) and keeps one whose member keeps polling', async () => {
    const idle = 'evt_prune_idle';
    const busy = 'evt_prune_busy';
    await join(idle);
    const keptToken = await join(busy);
    expect(await listed()).toEqual(expect.arrayContaining([idle, busy]));
    // Every key has a TTL, refreshed while someone waits.
    expect(await store.pttl(`tacos:queue:{${idle}}:seq`)).toBeGreaterThan(0);

    let sawIdleGone = false;
    let idleGoneAt: number | undefined;
    const started = Date.now();
    // Bounded: at most 6 s, polling every 50 ms; the busy member polls its status all along.
    while (Date.now() - started < 6000) {
      // Until it enters, the member reads 'waiting' (ready_for_entry says whether it may enter now).
      expect((await status(keptToken)).status, 'the member who keeps polling stays in line').toBe('waiting');
      if ((await store.pttl(`tacos:queue:{${idle}}:seq`)) === -2) sawIdleGone = true;
      const events = await listed();
      expect(events, 'an event with someone waiting stays listed').toContain(busy);
      if (!events.includes(idle)) idleGoneAt ??= Date.now();
      // Done once the idle event is gone, its keys have expired, and the busy one outlived
      // the retention time by a margin.
      if (idleGoneAt !== undefined && sawIdleGone && Date.now() - idleGoneAt > 800) break;
      await sleep(50);
    }
    expect(sawIdleGone, `tacos:queue:{${idle}}:seq expired`).toBe(true);
    expect(idleGoneAt, 'the idle event left GET /api/v1/queue/stats').toBeDefined();
    expect(idleGoneAt! - started).toBeLessThan(5000);
    expect(await store.pttl(`tacos:queue:{${busy}}:seq`)).toBeGreaterThan(0);
    expect(await waitingIn(busy)).toBe(1);
  });

  it('keeps sweeping the other events once an idle one is pruned: someone behind an expired member moves up', async () => {
    // The idle event registers first, so a sweep meets it before the busy one.
    await join('evt_prune_idle_2');
    await sleep(20);
    const busy = 'evt_prune_line';
    const ahead = await join(busy);
    const behind = await join(busy);
    expect((await status(behind)).position).toBe(2);

    const started = Date.now();
    let movedUpAt: number | undefined;
    // The member ahead polls until well after the idle event became prunable (1 s), then stops and
    // expires 500 ms later; the one behind keeps polling. Bounded: 6 s.
    while (Date.now() - started < 6000) {
      if (Date.now() - started < 1600) await status(ahead);
      const mine = await status(behind);
      expect(mine.status).toBe('waiting');
      if (mine.position === 1) {
        movedUpAt = Date.now();
        break;
      }
      await sleep(50);
    }
    expect(movedUpAt, 'the member behind moved up after the one ahead expired').toBeDefined();
    expect(movedUpAt! - started).toBeGreaterThan(1600);
    expect(movedUpAt! - started).toBeLessThan(4000);
    expect(await waitingIn(busy)).toBe(1);
  });
});

describe('while the gateway is closing', () => {
  /** Reads HTTP/1.1 responses off a raw socket until `count` have arrived (or the socket ends). */
  function responses(
    socket: Socket,
    count: number,
    timeoutMs: number,
  ): Promise<Array<{status: number; headers: Record<string, string>; body: string}>> {
    return new Promise((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const parsed: Array<{status: number; headers: Record<string, string>; body: string}> = [];
      const timer = setTimeout(
        () =>
          finish(new Error(`only ${parsed.length} of ${count} responses within ${timeoutMs} ms: ${buffer.toString()}`)),
        timeoutMs,
      );
      const finish = (error?: Error) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (error && parsed.length < count) reject(error);
        else resolve(parsed);
      };
      const parse = () => {
        for (;;) {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const [statusLine, ...lines] = buffer.subarray(0, end).toString().split('\r\n');
          const headers = Object.fromEntries(
            lines.map((line) => [
              line.slice(0, line.indexOf(':')).toLowerCase(),
              line.slice(line.indexOf(':') + 1).trim(),
            ]),
          );
          const length = Number(headers['content-length'] ?? 0);
          if (buffer.length < end + 4 + length) return;
          parsed.push({
            status: Number(statusLine.split(' ')[1]),
            headers,
            body: buffer.subarray(end + 4, end + 4 + length).toString(),
          });
          buffer = buffer.subarray(end + 4 + length);
          if (parsed.length >= count) return finish();
        }
      };
      const onData = (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        parse();
      };
      const onClose = () =>
        finish(new Error(`the connection closed after ${parsed.length} of ${count} responses: ${buffer.toString()}`));
      socket.on('data', onData);
      socket.on('close', onClose);
    });
  }

  async function backendCalls(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${backend.httpPort}/metrics`)).text();
    return parseMetrics(text)
      .filter((s) => s.name === 'mock_calls_total' && s.labels.method === 'GetReservation')
      .reduce((sum, s) => sum + s.value, 0);
  }

  async function refusesConnections(port: number): Promise<boolean> {
    const socket = connect(port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      return false;
    } catch {
      return true;
    } finally {
      socket.destroy();
    }
  }

  const joinBody = '{"event_id":"evt_during_close"}';
  it.each([
    [
      'a queue read (fastify)',
      'GET /api/v1/queue/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: during-close-1\r\n\r\n',
    ],
    [
      'a join (its direct path)',
      `POST /api/v1/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: during-close-1\r\nContent-Type: application/json\r\nContent-Length: ${joinBody.length}\r\n\r\n${joinBody}`,
    ],
  ])(
    'finishes the request in flight, and answers a new one, %s, with our 503 UNAVAILABLE envelope and its x-request-id',
    async (_name, newRequest) => {
      const closing = await gateway({BACKEND_RESERVATION_API_TIMEOUT: '10s', SERVER_SHUTDOWN_GRACE: '10s'});
      const socket = connect(closing.httpPort, '127.0.0.1');
      await once(socket, 'connect');
      const answers = responses(socket, 2, 15_000);
      try {
        // A slow request: the backend takes 1.5 s to answer.
        backend.faults.update({latencyMs: 1500});
        const callsBefore = await backendCalls();
        socket.write(
          `GET /api/v1/reservations/rsv_slow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${DEV_TOKEN}\r\nX-Request-ID: in-flight-1\r\n\r\n`,
        );
        for (let i = 0; i < 100 && (await backendCalls()) === callsBefore; i++) await sleep(10);
        expect(await backendCalls(), 'the slow request reached the backend').toBe(callsBefore + 1);

        const closed = closing.close();
        // The gateway has stopped accepting connections: it is closing, the slow request still in flight.
        let refused = false;
        for (let i = 0; i < 100 && !refused; i++) {
          refused = await refusesConnections(closing.httpPort);
          if (!refused) await sleep(10);
        }
        expect(refused, 'new connections are refused once close() runs').toBe(true);
        // A new request on the connection that is still open.
        socket.write(newRequest);

        const [inFlight, during] = await answers;
        // The request in flight was finished: the backend's answer (no such reservation), not a shutdown error.
        expect(inFlight.status, inFlight.body).toBe(404);
        expect(JSON.parse(inFlight.body).error.code).toBe('NOT_FOUND');
        expect(inFlight.headers['x-request-id']).toBe('in-flight-1');
        // The new one: our envelope, not fastify's own body.
        expect(during.status, during.body).toBe(503);
        expect(during.headers['x-request-id']).toBe('during-close-1');
        expect(JSON.parse(during.body)).toEqual({
          error: {code: 'UNAVAILABLE', message: expect.any(String), trace_id: 'during-close-1'},
        });
        expect(during.headers.connection).toBe('close');
        await closed;
      } finally {
        backend.faults.update({latencyMs: 0});
        socket.destroy();
      }
    },
  );
});
