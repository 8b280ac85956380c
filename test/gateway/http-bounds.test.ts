/**
 * The REST door under slow, greedy and faulty traffic (issue 15), as a client and an operator see
 * it: requests that arrive too slowly are cut, connections beyond the cap are refused and counted,
 * framework errors (a bad URL) answer our envelope, answers never carry internal addresses or
 * library messages (the log does, with the request id), and each Redis outage has its warn lines.
 * Real redis-servers on free ports, gateways in this process on 127.0.0.1:0, raw sockets and fetch
 * on loopback; every wait is bounded in count and time.
 */
import {once} from 'node:events';
import {connect, type Socket} from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, freePort, startRedis, type RedisProcess} from '../helpers/redis.js';

type AnyClient = grpc.Client & Record<string, any>;

const DEV_TOKEN = 'tacos-dev-token';
const ORIGIN = 'http://localhost:3000';
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

let redis: RedisProcess;
let unusedPort: number;
const gateways: TestGateway[] = [];
const clients: AnyClient[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  redis = await startRedis();
  unusedPort = await freePort();
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  for (const client of clients) client.close();
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await disposeRedis(redis);
});

/**
 * A gateway on `redisAddress` (this file's Redis by default) whose backends listen nowhere; unless
 * `ready` is false, once its /readyz says ready (fetch then keeps a connection to it open a while).
 */
async function gateway(
  env: Record<string, string> = {},
  redisAddress = redis.address,
  ready = true,
): Promise<TestGateway> {
  const started = await startTestGateway({
    REDIS_ADDRESS: redisAddress,
    SERVER_ENVIRONMENT: 'development',
    BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${unusedPort}`,
    BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${unusedPort}`,
    BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${unusedPort}`,
    BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${unusedPort}`,
    ...env,
  });
  gateways.push(started);
  if (ready) await waitForReady(started);
  return started;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw connection to the gateway; `reply` holds what it answered, `closed` settles when the gateway hangs up. */
async function rawConnection(port: number) {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  const state = {reply: '', closed: false};
  socket.on('data', (chunk: Buffer) => (state.reply += chunk.toString()));
  const closed = once(socket, 'close').then(() => {
    state.closed = true;
  });
  await once(socket, 'connect');
  return {socket, state, closed};
}

/** Waits (at most `attempts` x 100 ms) until `done` says yes. */
async function until(what: string, attempts: number, done: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    if (await done()) return;
    await sleep(100);
  }
  throw new Error(`${what}: not reached within ${attempts * 100} ms`);
}

async function refusals(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`, {signal: AbortSignal.timeout(5000)})).text();
  const counted: Record<string, number> = {};
  for (const sample of parseMetrics(text)) {
    if (sample.name === 'gateway_refusals_total' && sample.labels.door === 'http')
      counted[sample.labels.reason] = sample.value;
  }
  return counted;
}

function accessLine(gw: TestGateway, requestId: string | null) {
  return gw.logs.find((line) => line.msg === 'http request' && line.req_id === requestId);
}

describe('slow clients (SERVER_REQUEST_TIMEOUT=1s, SERVER_HEADERS_TIMEOUT=1s)', () => {
  let slow: TestGateway;
  beforeAll(async () => {
    slow = await gateway({SERVER_REQUEST_TIMEOUT: '1s', SERVER_HEADERS_TIMEOUT: '1s'});
  });

  it('cuts a join whose body arrives a byte at a time: 408 REQUEST_TIMEOUT long before the body is complete, and counts it', async () => {
    const body = JSON.stringify({event_id: 'evt_slow_body', user_id: 'slow-user-0001'});
    const {socket, state, closed} = await rawConnection(slow.httpPort);
    socket.write(
      `POST /api/v1/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    // One byte every 250 ms: the whole body would take over 12 s. Bounded by the body's length.
    let sent = 0;
    while (sent < body.length && !state.closed) {
      socket.write(body[sent]);
      sent += 1;
      await sleep(250);
    }
    await Promise.race([closed, sleep(3000)]);
    expect(sent, 'the gateway waited for the whole body').toBeLessThan(body.length);
    const [head, answer] = state.reply.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(answer).error.code).toBe('REQUEST_TIMEOUT');
    expect((await refusals(slow.http)).request_timeout).toBeGreaterThanOrEqual(1);
  });

  it('drops a connection that never sends its headers', async () => {
    const {state, closed} = await rawConnection(slow.httpPort);
    await Promise.race([closed, sleep(8000)]);
    expect(state.closed, 'the silent connection is still open after 8 s').toBe(true);
  });
});

describe('SERVER_MAX_CONNECTIONS=2', () => {
  it('closes a third connection at once, counts it, and takes new ones once the others are gone', async () => {
    // Not asked whether ready: no connection but this test's own may be open to it.
    const capped = await gateway({SERVER_MAX_CONNECTIONS: '2'}, redis.address, false);
    // Two kept-alive connections that were each answered: the gateway holds both.
    const held = [await rawConnection(capped.httpPort), await rawConnection(capped.httpPort)];
    for (const connection of held) {
      connection.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await until('the held connection is answered', 50, () => connection.state.reply.includes('"ok"'));
    }
    const third = await rawConnection(capped.httpPort);
    third.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await Promise.race([third.closed, sleep(5000)]);
    expect(third.state).toEqual({reply: '', closed: true});

    for (const connection of held) connection.socket.destroy();
    await Promise.all(held.map((connection) => connection.closed));
    // The gateway sees them gone a moment later: then a new client is served again.
    let counted: Record<string, number> = {};
    await until('a new connection is served', 50, async () => {
      try {
        counted = await refusals(capped.http);
        return true;
      } catch {
        return false;
      }
    });
    expect(counted.connection_cap).toBeGreaterThanOrEqual(1);
  });
});

describe('framework errors answer our envelope, with a request id, CORS headers and an access line', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  const json = {'content-type': 'application/json'};
  it.each([
    [
      'a bad percent-escape in the path',
      'GET',
      '/api/v1/queue/%zz?token=secret-waiting-token',
      {},
      undefined,
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a bad percent-escape in a route',
      'GET',
      '/api/v1/reservations/%E0%A4%A?token=secret-waiting-token',
      {authorization: `Bearer ${DEV_TOKEN}`},
      undefined,
      400,
      'INVALID_ARGUMENT',
    ],
    ['an unknown route', 'GET', '/api/v1/nothing?token=secret-waiting-token', {}, undefined, 404, 'NOT_FOUND'],
    [
      'another method',
      'GET',
      '/api/v1/queue/join?token=secret-waiting-token',
      {},
      undefined,
      405,
      'METHOD_NOT_ALLOWED',
    ],
    ['a body that is not JSON', 'POST', '/api/v1/queue/enter', json, '{"waiting_token":', 400, 'INVALID_ARGUMENT'],
    [
      'another media type',
      'POST',
      '/api/v1/queue/enter',
      {'content-type': 'application/xml'},
      '<x/>',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a body over the limit',
      'POST',
      '/api/v1/queue/enter',
      json,
      JSON.stringify({waiting_token: 'x'.repeat(20_000)}),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
  ])('%s', async (_name, method, pathname, headers, body, status, code) => {
    const response = await fetch(`${gw.http}${pathname}`, {
      method,
      headers: {origin: ORIGIN, ...headers},
      body,
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    expect(response.status, text).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toMatch(SAFE_REQUEST_ID);
    expect(JSON.parse(text).error).toMatchObject({code, trace_id: requestId});
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(text).not.toMatch(/secret-waiting-token|%zz|%E0|FST_ERR/);
    await until('the access line is written', 20, () => accessLine(gw, requestId) !== undefined);
    expect(accessLine(gw, requestId)).toMatchObject({method, status, ms: expect.any(Number)});
  });
});

describe('a backend that is down', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  const internals = /127\.0\.0\.1|ECONNREFUSED|connect |:\d{2,5}\b/;

  it.each(['http', 'grpc'])(
    'over REST (backend called over %s): 502 with a fixed message; the cause is in the log with the request id',
    async (protocol) => {
      const response = await fetch(`${gw.http}/api/v1/reservations/rsv_nobody`, {
        headers: {authorization: `Bearer ${DEV_TOKEN}`, 'x-tacos-backend-protocol': protocol},
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      expect(response.status, text).toBe(502);
      expect(JSON.parse(text).error.code).toBe('UPSTREAM_ERROR');
      expect(text).not.toMatch(internals);
      const requestId = response.headers.get('x-request-id');
      await until('the failure is logged', 20, () =>
        gw.logs.some((line) => line.req_id === requestId && /ECONNREFUSED|No connection/.test(String(line.cause))),
      );
    },
  );

  it.each(['http', 'grpc'])(
    'over gRPC (backend called over %s): UNAVAILABLE with a fixed message, in its details too',
    async (protocol) => {
      const service = await contractClient('gateway.v1.GatewayService', gw.grpc);
      clients.push(service);
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${DEV_TOKEN}`);
      metadata.set('x-tacos-backend-protocol', protocol);
      const error = (await unaryCall(service, 'GetReservation', {reservation_id: 'rsv_nobody'}, metadata).catch(
        (failure: unknown) => failure,
      )) as grpc.ServiceError;
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(error.details).not.toMatch(internals);
      const details = error.metadata.get('grpc-status-details-bin')[0] as Buffer;
      expect(details.toString('latin1')).not.toMatch(internals);
      const requestId = String(error.metadata.get('x-request-id')[0]);
      await until('the failure is logged', 20, () =>
        gw.logs.some((line) => line.req_id === requestId && /ECONNREFUSED|No connection/.test(String(line.cause))),
      );
    },
  );
});

describe('Redis outages', () => {
  it('log one warn line when Redis goes away and one when it is back, per outage; answers and /readyz do not show Redis internals', async () => {
    const own = await startRedis();
    try {
      const gw = await gateway({}, own.address);
      const outageLines = () =>
        gw.logs
          .filter((line) => /^Redis (unavailable|back)/.test(String(line.msg)))
          .map((line) => [line.level, String(line.msg).split(':')[0]]);
      for (let outage = 1; outage <= 2; outage += 1) {
        await own.stop(true);
        await until('the outage is logged', 50, () => outageLines().length === 2 * outage - 1);
        // Requests during the outage: 503 each, no more outage lines.
        for (let request = 0; request < 3; request += 1) {
          const answer = await fetch(`${gw.http}/api/v1/queue/join`, {
            method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({event_id: 'evt_outage'}),
            signal: AbortSignal.timeout(5000),
          });
          const text = await answer.text();
          expect(answer.status, text).toBe(503);
          expect(text).not.toMatch(
            new RegExp(`${own.port}|127\\.0\\.0\\.1|enableOfflineQueue|Stream|Connection is closed`),
          );
        }
        const readyz = await fetch(`${gw.http}/readyz`, {signal: AbortSignal.timeout(5000)});
        expect(readyz.status).toBe(503);
        expect(await readyz.text()).not.toMatch(new RegExp(`${own.port}|127\\.0\\.0\\.1`));
        await own.restart();
        await until('the return is logged', 100, () => outageLines().length === 2 * outage);
      }
      expect(outageLines()).toEqual([
        ['warn', 'Redis unavailable'],
        ['warn', 'Redis back'],
        ['warn', 'Redis unavailable'],
        ['warn', 'Redis back'],
      ]);
    } finally {
      await disposeRedis(own);
    }
  });
});
