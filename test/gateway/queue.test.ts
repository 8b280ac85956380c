/**
 * The waiting-room queue (issue 2, "The queue", points 1-7 and 9), through the REST and gRPC doors
 * of in-process gateways on a real redis-server started for this file.
 */
import {randomUUID} from 'node:crypto';
import {status as GrpcStatus, type ServiceError} from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {DEFAULT_QUEUE_SETTINGS, QueueService} from '../../src/services/gateway/queue/queue-service.js';
import {createLogger} from '../../src/services/logging.js';
import {closeRedisClient, createRedisClient, type RedisClient} from '../../src/services/redis/client.js';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, streamCall, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

type Client = Awaited<ReturnType<typeof contractClient>>;
type Json = Record<string, any>;

const RUN = randomUUID().slice(0, 8);
let eventCount = 0;
/** A fresh event id: every test has its own queue. */
const newEvent = (name: string) => `${name}-${RUN}-${++eventCount}`;

let redis: RedisProcess | undefined;
const gateways: TestGateway[] = [];
const clients: Client[] = [];
const redisClients: RedisClient[] = [];
const services: QueueService[] = [];

/** Default settings (instant 10, max 100, min wait 5 s, burst 20, rate 10/s, heartbeat 300 s). */
let gw: TestGateway;
/** A second instance with the same settings on the same Redis. */
let gw2: TestGateway;
/** Heartbeat 1 s, swept every 200 ms; reservation tokens live 1 s. Redis database 1. */
let fast: TestGateway;
/** Watchers re-read only every 10 s: anything sooner is the change notification. Position 1 instant. */
let slowPoll: TestGateway;
/** Everyone metered: no instant positions, min wait 500 ms, burst 2, (almost) no refill. */
let metered: TestGateway;
/** Everyone metered: no min wait, burst 1, refill 2/s. */
let refill: TestGateway;
/** Position 1 instant, 2-3 after 800 ms, above 3 refused. */
let small: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  const start = async (env: Record<string, string>) => {
    const gateway = await startTestGateway({REDIS_ADDRESS: redis!.address, ...env});
    gateways.push(gateway);
    // startGateway returns before its Redis client has connected (503 until then).
    await waitForReady(gateway);
    return gateway;
  };
  [gw, gw2, fast, slowPoll, metered, refill, small] = await Promise.all([
    start({}),
    start({}),
    // A sweeper expires the waiting tokens of every event in its Redis database by its own TTL, so
    // the 1 s heartbeat gateway gets a database of its own.
    start({REDIS_DATABASE: '1', QUEUE_HEARTBEAT_TTL: '1s', QUEUE_SWEEP_INTERVAL: '200ms', RESERVATION_TOKEN_TTL: '1s'}),
    start({QUEUE_SWEEP_INTERVAL: '10s', QUEUE_INSTANT_ADMISSION_POSITIONS: '1'}),
    start({
      QUEUE_INSTANT_ADMISSION_POSITIONS: '0',
      QUEUE_ADMISSION_MIN_WAIT: '500ms',
      QUEUE_ADMISSION_BURST: '2',
      QUEUE_ADMISSION_RATE: '0.001',
    }),
    start({
      QUEUE_INSTANT_ADMISSION_POSITIONS: '0',
      QUEUE_ADMISSION_MIN_WAIT: '0ms',
      QUEUE_ADMISSION_BURST: '1',
      QUEUE_ADMISSION_RATE: '2',
    }),
    start({
      QUEUE_INSTANT_ADMISSION_POSITIONS: '1',
      QUEUE_MAX_ADMISSION_POSITION: '3',
      QUEUE_ADMISSION_MIN_WAIT: '800ms',
    }),
  ]);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.allSettled(services.map((service) => service.close()));
  await Promise.allSettled(redisClients.map((client) => closeRedisClient(client)));
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await disposeRedis(redis);
});

// ---------------------------------------------------------------------------------------------
// The two doors

const queueClients = new Map<string, Client>();
const streamClients = new Map<string, Client>();

async function cachedClient(cache: Map<string, Client>, service: string, gateway: TestGateway): Promise<Client> {
  let client = cache.get(gateway.grpc);
  if (!client) {
    client = await contractClient(service, gateway.grpc);
    cache.set(gateway.grpc, client);
    clients.push(client);
  }
  return client;
}

const grpcQueue = (gateway: TestGateway) => cachedClient(queueClients, 'gateway.v1.QueueService', gateway);

async function joinRest(gateway: TestGateway, eventId: string): Promise<{token: string; position: number}> {
  const response = await postJson(`${gateway.http}/api/v1/queue/join`, {event_id: eventId});
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  expect(response.body.status).toBe('waiting');
  return {token: response.body.waiting_token, position: response.body.position_hint};
}

async function joinGrpc(gateway: TestGateway, eventId: string): Promise<{token: string; position: number}> {
  const response = await unaryCall(await grpcQueue(gateway), 'JoinQueue', {event_id: eventId});
  expect(response.status).toBe('QUEUE_STATUS_WAITING');
  return {token: response.waiting_token, position: response.position_hint};
}

/** `count` joins one after another, alternating the doors; returns the tokens in join order. */
async function joinInOrder(gateway: TestGateway, eventId: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let index = 0; index < count; index++) {
    const joined = index % 2 === 0 ? await joinRest(gateway, eventId) : await joinGrpc(gateway, eventId);
    expect(joined.position).toBe(index + 1);
    tokens.push(joined.token);
  }
  return tokens;
}

const restStatus = (gateway: TestGateway, token: string) =>
  getJson(`${gateway.http}/api/v1/queue/status?token=${encodeURIComponent(token)}`);
const restEnter = (gateway: TestGateway, token: string) =>
  postJson(`${gateway.http}/api/v1/queue/enter`, {waiting_token: token});
const restLeave = (gateway: TestGateway, token: string) =>
  getJson(`${gateway.http}/api/v1/queue/leave?token=${encodeURIComponent(token)}`, {method: 'DELETE'});
const restStats = (gateway: TestGateway, eventId?: string) =>
  getJson(
    `${gateway.http}/api/v1/queue/stats${eventId === undefined ? '' : `?event_id=${encodeURIComponent(eventId)}`}`,
  );

async function grpcStatus(gateway: TestGateway, token: string): Promise<Json> {
  return unaryCall(await grpcQueue(gateway), 'GetQueueStatus', {waiting_token: token});
}

async function grpcEnter(gateway: TestGateway, token: string): Promise<Json> {
  return unaryCall(await grpcQueue(gateway), 'RequestAdmission', {waiting_token: token});
}

async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('the call succeeded; an error was expected');
}

/** The live position of a token, read over REST (status 200, waiting or ready). */
async function positionOf(gateway: TestGateway, token: string): Promise<number> {
  const response = await restStatus(gateway, token);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.position;
}

async function openStream(gateway: TestGateway, token: string) {
  const client = await cachedClient(streamClients, 'gateway.v1.WebSocketService', gateway);
  return streamCall(client, 'StreamQueueUpdates', {waiting_token: token});
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  intervalMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

const oneToN = (count: number) => Array.from({length: count}, (_, index) => index + 1);

// ---------------------------------------------------------------------------------------------

describe('1. positions follow join order', () => {
  it('sequential joins get 1, 2, 3 ... in order, and status on either door says the same', async () => {
    const eventId = newEvent('order-seq');
    const tokens = await joinInOrder(gw, eventId, 6);
    for (const [index, token] of tokens.entries()) {
      const rest = await restStatus(gw, token);
      expect(rest.status).toBe(200);
      expect(rest.body.position).toBe(index + 1);
      const grpc = await grpcStatus(gw, token);
      expect(grpc.position).toBe(index + 1);
    }
  });

  it('200 joins fired at once get exactly the positions 1..200, each matching its status', async () => {
    const eventId = newEvent('order-burst');
    const joined = await Promise.all(
      Array.from({length: 200}, (_, index) => (index % 4 === 0 ? joinGrpc(gw, eventId) : joinRest(gw, eventId))),
    );
    expect(new Set(joined.map((entry) => entry.token)).size).toBe(200);
    expect(joined.map((entry) => entry.position).sort((a, b) => a - b)).toEqual(oneToN(200));
    // Nobody left, so the live rank is still the rank each join was given, on both doors.
    const live = await Promise.all(
      joined.map(async (entry, index) =>
        index % 2 === 0 ? positionOf(gw, entry.token) : (await grpcStatus(gw, entry.token)).position,
      ),
    );
    expect(live).toEqual(joined.map((entry) => entry.position));
  });

  it('two gateway instances on one Redis share one order', async () => {
    const eventId = newEvent('order-two');
    const positions: number[] = [];
    for (let index = 0; index < 8; index++)
      positions.push((await joinRest(index % 2 === 0 ? gw : gw2, eventId)).position);
    expect(positions).toEqual(oneToN(8));

    // And at once, through both: still one gap-free sequence.
    const burst = await Promise.all(
      Array.from({length: 100}, (_, index) => joinRest(index % 2 === 0 ? gw : gw2, eventId)),
    );
    expect(burst.map((entry) => entry.position).sort((a, b) => a - b)).toEqual(oneToN(108).slice(8));
    // A token joined on one instance reads the same position on the other.
    const sample = burst.slice(0, 10);
    for (const entry of sample) expect(await positionOf(gw2, entry.token)).toBe(await positionOf(gw, entry.token));
  });
});

describe('2. everyone behind moves up at once', () => {
  it('when someone ahead enters or leaves, in status on both doors', async () => {
    const eventId = newEvent('moveup');
    const [first, second, third, fourth] = await joinInOrder(gw, eventId, 4);

    expect((await restEnter(gw, first)).status).toBe(200);
    expect(await positionOf(gw, second)).toBe(1);
    expect((await grpcStatus(gw, third)).position).toBe(2);
    expect(await positionOf(gw, fourth)).toBe(3);

    expect((await restLeave(gw, second)).status).toBe(200);
    expect((await grpcStatus(gw2, third)).position).toBe(1);
    expect(await positionOf(gw, fourth)).toBe(2);
  });

  it('in the stream, promptly: a leave or entry ahead is pushed, not found by the next poll', async () => {
    const eventId = newEvent('moveup-stream');
    // slowPoll re-reads a watcher's position only every 10 s, so a prompt update is the notification.
    const [first, second, third] = await joinInOrder(slowPoll, eventId, 3);
    const stream = await openStream(slowPoll, third);
    try {
      const initial = await stream.waitFor(() => true, 2000);
      expect(initial.type).toBe('EVENT_TYPE_QUEUE_UPDATE');
      expect(initial.queue_update).toMatchObject({
        waiting_token: third,
        position: 3,
        admission_ready: false,
        event_type: 'QUEUE_EVENT_TYPE_POSITION_CHANGED',
      });

      let started = Date.now();
      expect((await restLeave(slowPoll, first)).status).toBe(200);
      const afterLeave = await stream.waitFor((message) => message.queue_update.position < 3, 1000);
      const leaveLatency = Date.now() - started;
      expect(afterLeave.queue_update.position).toBe(2);
      expect(leaveLatency).toBeLessThan(500);

      started = Date.now();
      expect((await grpcEnter(slowPoll, second)).admission).toBe('ADMISSION_STATUS_GRANTED');
      const afterEnter = await stream.waitFor((message) => message.queue_update.position < 2, 1000);
      expect(Date.now() - started).toBeLessThan(500);
      expect(afterEnter.queue_update).toMatchObject({
        position: 1,
        admission_ready: true,
        event_type: 'QUEUE_EVENT_TYPE_ADMISSION_READY',
      });

      // Entering ends the stream normally.
      expect((await restEnter(slowPoll, third)).status).toBe(200);
      const ended = await Promise.race([stream.ended, sleep(2000).then(() => undefined)]);
      expect(ended?.code).toBe(GrpcStatus.OK);
    } finally {
      stream.cancel();
    }
  });

  it('a change made through another gateway instance reaches the stream too', async () => {
    const eventId = newEvent('moveup-cross');
    const [first, , third] = await joinInOrder(slowPoll, eventId, 3);
    const stream = await openStream(slowPoll, third);
    try {
      await stream.waitFor((message) => message.queue_update.position === 3, 2000);
      expect((await restLeave(gw2, first)).status).toBe(200);
      await stream.waitFor((message) => message.queue_update.position === 2, 1000);
    } finally {
      stream.cancel();
    }
  });

  it('when someone ahead stops polling and expires, without anyone touching that token', async () => {
    const eventId = newEvent('moveup-expiry');
    // fast: heartbeat 1 s, swept every 200 ms.
    const joinedBy = Date.now();
    const [silent, polled, watched] = await joinInOrder(fast, eventId, 3);
    const stream = await openStream(fast, watched);
    try {
      await stream.waitFor((message) => message.queue_update.position === 3, 2000);
      // `polled` keeps polling (a heartbeat each time) until it is first; `silent` is never called.
      await eventually('the silent token expires and the polled one moves up', 4000, 100, async () =>
        (await positionOf(fast, polled)) === 1 ? true : undefined,
      );
      // Not before its heartbeat TTL ran out.
      expect(Date.now() - joinedBy).toBeGreaterThanOrEqual(1000);
      // The streamed watcher (watching is a heartbeat too) moved up as well.
      await stream.waitFor((message) => message.queue_update.position === 2, 1000);
      const stats = await restStats(fast, eventId);
      expect(stats.body.events[0].total_waiting).toBe(2);
      // Only now is the silent token looked at: it says expired.
      const status = await restStatus(fast, silent);
      expect(status.status).toBe(200);
      expect(status.body.status).toBe('expired');
    } finally {
      stream.cancel();
    }
  });
});

describe('3. who may enter when', () => {
  it('positions 1-10 enter at once, 11-100 must wait, above 100 is refused on both doors', async () => {
    const eventId = newEvent('admission');
    const joined = await Promise.all(Array.from({length: 101}, () => joinRest(gw, eventId)));
    const byPosition = joined.sort((a, b) => a.position - b.position).map((entry) => entry.token);
    expect(joined.map((entry) => entry.position)).toEqual(oneToN(101));
    const at = (position: number) => byPosition[position - 1];

    // 101: refused, over REST (403 NOT_READY) and gRPC (DENIED).
    const refused = await restEnter(gw, at(101));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('NOT_READY');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const refusedGrpc = await grpcEnter(gw, at(101));
    expect(refusedGrpc.admission).toBe('ADMISSION_STATUS_DENIED');
    expect(refusedGrpc.reservation_token).toBe('');
    expect(refusedGrpc.error.code).toBe('ERROR_CODE_FAILED_PRECONDITION');

    // 11 and 100: not before the minimum wait (5 s), with a Retry-After within it.
    for (const position of [11, 100]) {
      const early = await restEnter(gw, at(position));
      expect(early.status).toBe(403);
      expect(early.body.error.code).toBe('NOT_READY');
      const retryAfter = Number(early.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(5);
      expect((await grpcEnter(gw, at(position))).admission).toBe('ADMISSION_STATUS_DENIED');
    }
    const waitingStatus = await restStatus(gw, at(11));
    expect(waitingStatus.body).toMatchObject({status: 'waiting', position: 11, ready_for_entry: false});
    expect((await grpcStatus(gw, at(11))).status).toBe('QUEUE_STATUS_WAITING');

    // 1-10: ready, and all enter at once, over either door. REST says waiting + ready_for_entry, the
    // pair on which the web client enters by itself.
    expect((await restStatus(gw, at(10))).body).toMatchObject({status: 'waiting', position: 10, ready_for_entry: true});
    expect(await grpcStatus(gw, at(1))).toMatchObject({status: 'QUEUE_STATUS_READY', admission_ready: true});
    const entered = await Promise.all(
      byPosition
        .slice(0, 10)
        .map(async (token, index) =>
          index % 2 === 0
            ? (await restEnter(gw, token)).body.admission
            : (await grpcEnter(gw, token)).admission === 'ADMISSION_STATUS_GRANTED'
              ? 'granted'
              : 'denied',
        ),
    );
    expect(entered).toEqual(Array(10).fill('granted'));
    // Who was 11th is now first, so may enter at once; who was 101st is now 91st and may wait.
    expect(await positionOf(gw, at(11))).toBe(1);
    expect((await restEnter(gw, at(11))).status).toBe(200);
    expect(await positionOf(gw, at(101))).toBe(90);
  });

  it('after the minimum wait, positions up to the maximum enter and those above are still refused', async () => {
    const eventId = newEvent('admission-wait');
    // small: position 1 instant, 2-3 after 800 ms, above 3 refused.
    const tokens = await joinInOrder(small, eventId, 4);
    const early = await restEnter(small, tokens[1]);
    expect(early.status).toBe(403);
    expect(early.headers.get('retry-after')).toBe('1');
    expect((await restStatus(small, tokens[1])).body.ready_for_entry).toBe(false);

    await eventually('position 2 becomes ready', 3000, 50, async () =>
      (await restStatus(small, tokens[1])).body.ready_for_entry === true ? true : undefined,
    );
    expect((await grpcStatus(small, tokens[2])).status).toBe('QUEUE_STATUS_READY');
    const above = await restEnter(small, tokens[3]);
    expect(above.status).toBe(403);
    expect(above.body.error.code).toBe('NOT_READY');
    expect((await grpcEnter(small, tokens[3])).admission).toBe('ADMISSION_STATUS_DENIED');
    expect((await restStatus(small, tokens[3])).body).toMatchObject({
      status: 'waiting',
      position: 4,
      ready_for_entry: false,
    });

    expect((await grpcEnter(small, tokens[2])).admission).toBe('ADMISSION_STATUS_GRANTED');
    expect((await restEnter(small, tokens[1])).status).toBe(200);
    // The fourth moved up to 2 and has waited long enough: in.
    expect(await positionOf(small, tokens[3])).toBe(2);
    expect((await restEnter(small, tokens[3])).status).toBe(200);
  });

  it('a token bucket meters entry, and status calls never take from it', async () => {
    const eventId = newEvent('bucket');
    // metered: no instant positions, min wait 500 ms, burst 2, practically no refill.
    const tokens = await joinInOrder(metered, eventId, 5);
    await eventually('the minimum wait passes', 3000, 50, async () =>
      (await restStatus(metered, tokens[4])).body.ready_for_entry === true ? true : undefined,
    );
    // Many status calls on both doors: the bucket keeps its 2.
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        tokens.map(async (token, index) => (index % 2 === 0 ? restStatus(metered, token) : grpcStatus(metered, token))),
      );
    }
    const outcomes: number[] = [];
    for (const token of tokens) outcomes.push((await restEnter(metered, token)).status);
    expect(outcomes).toEqual([200, 200, 403, 403, 403]);

    const denied = await restEnter(metered, tokens[2]);
    expect(denied.body.error.code).toBe('NOT_READY');
    expect(Number(denied.headers.get('retry-after'))).toBeGreaterThan(5);
    expect((await grpcEnter(metered, tokens[3])).admission).toBe('ADMISSION_STATUS_DENIED');
    // An empty bucket shows in status: not ready, though first and past the minimum wait.
    expect((await restStatus(metered, tokens[2])).body).toMatchObject({
      status: 'waiting',
      position: 1,
      ready_for_entry: false,
    });
  });

  it('the bucket refills at QUEUE_ADMISSION_RATE', async () => {
    const eventId = newEvent('refill');
    // refill: no instant positions, no min wait, burst 1, 2 per second.
    const [first, second] = await joinInOrder(refill, eventId, 2);
    const started = Date.now();
    expect((await restEnter(refill, first)).status).toBe(200);
    const denied = await restEnter(refill, second);
    expect(denied.status).toBe(403);
    expect(denied.headers.get('retry-after')).toBe('1');
    await eventually('a refilled token lets the second in', 2000, 25, async () =>
      (await restEnter(refill, second)).status === 200 ? true : undefined,
    );
    // One token every 500 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });
});

describe('4. a granted token', () => {
  it('cannot enter twice, and status says ready', async () => {
    const eventId = newEvent('granted');
    const [viaRest, viaGrpc] = await joinInOrder(gw, eventId, 2);

    const granted = await restEnter(gw, viaRest);
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({admission: 'granted', ttl_sec: 30});
    expect(granted.body.reservation_token).toMatch(/\S{16,}/);
    const again = await restEnter(gw, viaRest);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('ALREADY_ADMITTED');
    const againGrpc = await grpcError(grpcEnter(gw2, viaRest));
    expect(againGrpc.code).toBe(GrpcStatus.ALREADY_EXISTS);

    const status = await restStatus(gw, viaRest);
    expect(status.status).toBe(200);
    // Entered: admitted, and not again ready for an entry.
    expect(status.body).toMatchObject({status: 'admitted', admitted: true, ready_for_entry: false});
    expect(await grpcStatus(gw, viaRest)).toMatchObject({status: 'QUEUE_STATUS_READY', admission_ready: true});

    const grantedGrpc = await grpcEnter(gw, viaGrpc);
    expect(grantedGrpc.admission).toBe('ADMISSION_STATUS_GRANTED');
    expect(grantedGrpc.ttl_seconds).toBe(30);
    const validUntil = Number(grantedGrpc.valid_until.seconds) * 1000;
    expect(Math.abs(validUntil - (Date.now() + 30_000))).toBeLessThan(5000);
    expect(grantedGrpc.reservation_token).not.toBe(granted.body.reservation_token);
    const twice = await restEnter(gw, viaGrpc);
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('ALREADY_ADMITTED');
  });

  it('stays admitted when it leaves afterwards', async () => {
    const eventId = newEvent('granted-leave');
    const [token] = await joinInOrder(gw, eventId, 1);
    expect((await restEnter(gw, token)).status).toBe(200);
    expect((await restLeave(gw, token)).status).toBe(200);
    expect((await restStatus(gw, token)).body).toMatchObject({status: 'admitted', ready_for_entry: false});
    const again = await restEnter(gw, token);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('ALREADY_ADMITTED');
  });
});

describe('5. the reservation token', () => {
  /** A QueueService of our own on the database of `gw` (0) and of `fast` (1), reservation tokens for 1 s. */
  const makeService = async (database: number) => {
    const client = createRedisClient(
      {address: redis!.address, database, clusterMode: false, commandTimeoutMs: 1000},
      'queue-test',
    );
    redisClients.push(client);
    // The client fails fast rather than queue commands while it connects.
    await eventually('the Redis client connects', 5000, 20, async () => (client.status === 'ready' ? true : undefined));
    const service = new QueueService(
      client,
      {...DEFAULT_QUEUE_SETTINGS, reservationTokenTtlMs: 1000},
      createLogger('queue-test', 'silent'),
    );
    services.push(service);
    return service;
  };

  it('lives 30 s unless RESERVATION_TOKEN_TTL says otherwise', () => {
    expect(DEFAULT_QUEUE_SETTINGS.reservationTokenTtlMs).toBe(30_000);
    expect(readGatewayConfig({}).queue.reservationTokenTtlMs).toBe(30_000);
    expect(readGatewayConfig({RESERVATION_TOKEN_TTL: '1s'}).queue.reservationTokenTtlMs).toBe(1000);
  });

  it('is taken once, and names the event it was issued for', async () => {
    const eventId = newEvent('rtoken');
    const [token] = await joinInOrder(gw, eventId, 1);
    const {body} = await restEnter(gw, token);
    const reservationToken = body.reservation_token as string;
    const service = await makeService(0);
    expect(await service.consumeReservationToken('rt_not-a-token-we-issued')).toBeUndefined();
    expect(await service.consumeReservationToken(`rt_${token}`)).toBeUndefined();
    expect(await service.consumeReservationToken(reservationToken)).toMatchObject({eventId});
    expect(await service.consumeReservationToken(reservationToken)).toBeUndefined();
  });

  it('is gone after its TTL, unused', async () => {
    const eventId = newEvent('rtoken-ttl');
    // fast issues reservation tokens for 1 s; so does the service built here.
    const [viaGateway] = await joinInOrder(fast, eventId, 1);
    const fromGateway = await restEnter(fast, viaGateway);
    expect(fromGateway.body).toMatchObject({admission: 'granted', ttl_sec: 1});
    const service = await makeService(1);
    const direct = await service.join({eventId, userId: 'u', sessionId: 's'});
    const fromService = await service.enter(direct.waitingToken);
    expect(fromService.outcome).toBe('granted');
    const fresh = await service.enter((await service.join({eventId, userId: 'u2', sessionId: 's'})).waitingToken);
    if (fresh.outcome !== 'granted' || fromService.outcome !== 'granted') throw new Error('not granted');
    // Within the TTL it is taken...
    expect(await service.consumeReservationToken(fresh.reservationToken)).toBeDefined();
    await sleep(1200);
    // ...after it, the unused ones are gone.
    expect(await service.consumeReservationToken(fromGateway.body.reservation_token)).toBeUndefined();
    expect(await service.consumeReservationToken(fromService.reservationToken)).toBeUndefined();
  });
});

describe('6. heartbeat and leave', () => {
  it('the heartbeat TTL is 300 s by default', () => {
    expect(readGatewayConfig({}).queue.heartbeatTtlMs).toBe(300_000);
    expect(readGatewayConfig({QUEUE_HEARTBEAT_TTL: '1s'}).queue.heartbeatTtlMs).toBe(1000);
  });

  it('a waiting token not polled within the TTL expires; one that is polled lives on', async () => {
    const eventId = newEvent('heartbeat');
    // fast: heartbeat 1 s.
    const [silent, polled] = await joinInOrder(fast, eventId, 2);
    const started = Date.now();
    // Poll one for 2.5 TTLs; the other is left alone.
    while (Date.now() - started < 2500) {
      const status = await restStatus(fast, polled);
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({status: 'waiting', ready_for_entry: true});
      await sleep(200);
    }
    expect(await positionOf(fast, polled)).toBe(1);
    const enter = await restEnter(fast, silent);
    expect(enter.status).toBe(410);
    expect(enter.body.error.code).toBe('TOKEN_EXPIRED');
    expect((await restStatus(fast, silent)).body).toMatchObject({status: 'expired', ready_for_entry: false});
    expect((await grpcStatus(fast, silent)).status).toBe('QUEUE_STATUS_EXPIRED');
    expect((await grpcEnter(fast, silent)).admission).toBe('ADMISSION_STATUS_EXPIRED');
    expect((await restEnter(fast, polled)).status).toBe(200);
  });

  it('expiry also comes to a token nobody asks about (the sweep), then status and enter say so', async () => {
    const eventId = newEvent('heartbeat-sweep');
    const [token] = await joinInOrder(fast, eventId, 1);
    // Watch the event's count, not the token (a status call would be a heartbeat).
    await eventually('the token is swept', 4000, 100, async () =>
      (await restStats(fast, eventId)).body.events[0].total_waiting === 0 ? true : undefined,
    );
    expect((await restStatus(fast, token)).body.status).toBe('expired');
    expect((await restEnter(fast, token)).status).toBe(410);
  });

  it('leave is immediate and idempotent', async () => {
    const eventId = newEvent('leave');
    const [first, second, third] = await joinInOrder(gw, eventId, 3);
    const left = await unaryCall(await grpcQueue(gw), 'LeaveQueue', {waiting_token: first});
    expect(left.success).toBe(true);
    // The very next read, on the other door and instance, sees everyone moved up.
    expect(await positionOf(gw2, second)).toBe(1);
    expect((await grpcStatus(gw, third)).position).toBe(2);

    const again = await restLeave(gw, first);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({status: 'left'});
    expect((await unaryCall(await grpcQueue(gw2), 'LeaveQueue', {waiting_token: first})).success).toBe(true);
    expect(await positionOf(gw, second)).toBe(1);

    expect((await restStatus(gw, first)).body).toMatchObject({status: 'left', ready_for_entry: false});
    expect((await grpcStatus(gw, first)).status).toBe('QUEUE_STATUS_LEFT');
    const enter = await restEnter(gw, first);
    expect(enter.status).toBe(409);
    expect(enter.body.error.code).toBe('TOKEN_LEFT');
    expect((await grpcEnter(gw, first)).admission).toBe('ADMISSION_STATUS_INVALID');
  });
});

describe('7. queue stats', () => {
  it('count waiting and admitted per event, and admissions in the last minute, on both doors', async () => {
    const eventId = newEvent('stats');
    const otherId = newEvent('stats-other');
    const tokens = await joinInOrder(gw, eventId, 6);
    await joinInOrder(gw, otherId, 2);
    expect((await restEnter(gw, tokens[0])).status).toBe(200);
    expect((await grpcEnter(gw, tokens[1])).admission).toBe('ADMISSION_STATUS_GRANTED');
    expect((await restEnter(gw, tokens[2])).status).toBe(200);
    expect((await restLeave(gw, tokens[3])).status).toBe(200);

    const rest = await restStats(gw, eventId);
    expect(rest.status).toBe(200);
    expect(rest.body.events).toHaveLength(1);
    expect(rest.body.events[0]).toMatchObject({
      event_id: eventId,
      total_waiting: 2,
      total_admitted: 3,
      admission_rate_per_minute: 3,
    });

    const grpc = await unaryCall(await grpcQueue(gw2), 'GetQueueStats', {event_id: eventId});
    expect(grpc.events).toHaveLength(1);
    expect(grpc.events[0]).toMatchObject({
      event_id: eventId,
      total_waiting: 2,
      total_admitted: 3,
      admission_rate_per_minute: 3,
    });
    expect(grpc.system).toMatchObject({total_active_queues: 1, total_waiting_users: 2, total_admitted_users: 3});

    // Without an event: every event, each with its own counts.
    const all = await restStats(gw);
    const byId = new Map((all.body.events as Json[]).map((event) => [event.event_id, event]));
    expect(byId.get(eventId)).toMatchObject({total_waiting: 2, total_admitted: 3});
    expect(byId.get(otherId)).toMatchObject({total_waiting: 2, total_admitted: 0, admission_rate_per_minute: 0});
    const allGrpc = await unaryCall(await grpcQueue(gw), 'GetQueueStats', {});
    expect((allGrpc.events as Json[]).find((event) => event.event_id === otherId)).toMatchObject({
      total_waiting: 2,
      total_admitted: 0,
    });

    // An event nobody joined: zeros, not an error.
    expect((await restStats(gw, newEvent('stats-empty'))).body.events[0]).toMatchObject({
      total_waiting: 0,
      total_admitted: 0,
    });
  });
});

describe('9. many concurrent joins lose nothing', () => {
  it('2,000 joins at once: 2,000 distinct tokens, positions 1..2000 with no gap', {timeout: 60_000}, async () => {
    const eventId = newEvent('many');
    const responses = await Promise.all(
      Array.from({length: 2000}, () => postJson(`${gw.http}/api/v1/queue/join`, {event_id: eventId})),
    );
    expect(responses.filter((response) => response.status !== 202)).toEqual([]);
    const tokens = responses.map((response) => response.body.waiting_token as string);
    expect(new Set(tokens).size).toBe(2000);
    const positions = responses.map((response) => response.body.position_hint as number).sort((a, b) => a - b);
    expect(positions).toEqual(oneToN(2000));
    expect((await restStats(gw, eventId)).body.events[0].total_waiting).toBe(2000);
    // Spot checks: the live position is the one each join was given.
    for (const index of [0, 499, 1000, 1999]) {
      expect(await positionOf(gw, tokens[index])).toBe(responses[index].body.position_hint);
    }
  });
});

describe('10. the ETA counts the minimum wait', () => {
  it('a token above the instant positions is told the wait that enter will ask of it, not only the rate', async () => {
    // At 10 a second, position 1 would be 1 s away; the minimum wait is 5 s.
    const gateway = await startTestGateway({
      REDIS_ADDRESS: redis!.address,
      QUEUE_INSTANT_ADMISSION_POSITIONS: '0',
      QUEUE_ADMISSION_MIN_WAIT: '5s',
      QUEUE_ADMISSION_RATE: '10',
    });
    gateways.push(gateway);
    await waitForReady(gateway);
    const {token} = await joinRest(gateway, newEvent('eta-min-wait'));
    const status = await restStatus(gateway, token);
    expect(status.body).toMatchObject({status: 'waiting', ready_for_entry: false});
    expect(status.body.eta_sec).toBeGreaterThanOrEqual(4);
    expect(status.body.eta_sec).toBeLessThanOrEqual(5);
    const entry = await restEnter(gateway, token);
    expect(entry.status).toBe(403);
    expect(Number(entry.headers.get('retry-after'))).toBeLessThanOrEqual(status.body.eta_sec);
  });
});
