/**
 * The queue's keyspace is bounded and its failures are not stored (issue #15): the gateway in this
 * process on 127.0.0.1:0 against a real redis-server started here, real REST and gRPC clients, and
 * a loopback TCP proxy in front of Redis that can hold Redis's replies (a join that ran but whose
 * answer was late). Every loop is bounded in count and time.
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {SignJWT} from 'jose';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {getJson, postJson, startTestGateway, type TestGateway} from '../helpers/gateway.js';
import {contractClient} from '../helpers/grpc-client.js';
import {disposeRedis, freePort, startRedis, type RedisProcess} from '../helpers/redis.js';

const SECRET = 'queue-bounds-secret-0123456789abcdef';
const CATALOG_EVENT = 'evt_2026_concert';

let redis: RedisProcess | undefined;
const gateways: TestGateway[] = [];
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  for (const client of clients) client.disconnect();
  await disposeRedis(redis);
});

/** A gateway on its own Redis database, so one test's keys are not another's. */
async function gateway(
  database: number,
  env: Record<string, string> = {},
  address = redis!.address,
): Promise<TestGateway> {
  const started = await startTestGateway({
    REDIS_ADDRESS: address,
    REDIS_DATABASE: String(database),
    LOG_LEVEL: 'silent',
    ...env,
  });
  gateways.push(started);
  return started;
}

async function store(database: number): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port: redis!.port,
    db: database,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  clients.push(client);
  await client.connect();
  return client;
}

/** Every key of the database with its PTTL (SCAN, never KEYS). */
async function keysWithTtl(client: Redis): Promise<Map<string, number>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.pttl(key);
  const ttls = ((await pipeline.exec()) ?? []).map(([, ttl]) => Number(ttl));
  return new Map(keys.map((key, index) => [key, ttls[index]]));
}

/** Runs `count` tasks, `parallel` at a time. */
async function inParallel<T>(count: number, parallel: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({length: parallel}, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(
  'a bounded keyspace (development: unknown events open themselves up to QUEUE_MAX_OPEN_EVENTS)',
  {timeout: 180_000},
  () => {
    const DATABASE = 1;
    const JOINS = 10_000;
    const CAP = 1000; // the default of QUEUE_MAX_OPEN_EVENTS
    let gw: TestGateway;
    let client: Redis;
    let answers: Array<{status: number; code?: string; message?: string}>;

    beforeAll(async () => {
      gw = await gateway(DATABASE, {SERVER_ENVIRONMENT: 'development'});
      client = await store(DATABASE);
      const run = `${Date.now()}`;
      answers = await inParallel(JOINS, 32, async (index) => {
        const answer = await postJson(`${gw.http}/api/v1/queue/join`, {
          event_id: `evt_random_${run}_${index}`,
          user_id: `u${index}`,
        });
        return {status: answer.status, code: answer.body.error?.code, message: answer.body.error?.message};
      });
    }, 170_000);

    it(`10,000 joins to random new event ids: ${CAP} events open, the rest refused with 429 TOO_MANY_EVENTS saying what to do`, () => {
      const joined = answers.filter((answer) => answer.status === 202);
      const refused = answers.filter((answer) => answer.status !== 202);
      expect(joined).toHaveLength(CAP);
      expect(new Set(refused.map((answer) => `${answer.status} ${answer.code}`))).toEqual(
        new Set(['429 TOO_MANY_EVENTS']),
      );
      expect(refused[0].message).toMatch(/QUEUE_MAX_OPEN_EVENTS/);
    });

    it('leaves a bounded number of keys, every one with a TTL', async () => {
      // The queue's keys (development's test users have their own).
      const keys = new Map(
        [...(await keysWithTtl(client))].filter(
          ([key]) => key.startsWith('tacos:queue:') || key.startsWith('tacos:idempotency:'),
        ),
      );
      // Per open event: seq, waiting, heartbeat and one token; then the open set and the registry.
      expect(keys.size).toBeLessThanOrEqual(4 * CAP + 2);
      const withoutTtl = [...keys].filter(([, ttl]) => ttl < 0);
      expect(withoutTtl.slice(0, 5), `${withoutTtl.length} keys without a TTL`).toEqual([]);
    });

    it('then, idle, the gateway sends Redis next to nothing (INFO stats over 2 s)', async () => {
      const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))![1]);
      const before = await processed();
      await sleep(2000);
      // The two INFO calls count too; a sweep that walked every event would send thousands.
      expect((await processed()) - before).toBeLessThan(20);
    });

    it('GET /api/v1/queue/stats answers a page (about QUEUE_STATS_PAGE_SIZE, 100) and a cursor that reaches every event', async () => {
      // ZSCAN's COUNT is a hint: a page may hold a few more.
      const PAGE_BOUND = 150;
      const first = await getJson(`${gw.http}/api/v1/queue/stats`);
      expect(first.status).toBe(200);
      expect(first.body.events.length).toBeLessThanOrEqual(PAGE_BOUND);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      const seen = new Set<string>(first.body.events.map((event: {event_id: string}) => event.event_id));
      let cursor: string | undefined = first.body.next_cursor;
      for (let page = 0; cursor && page < 100; page++) {
        const next = await getJson(`${gw.http}/api/v1/queue/stats?cursor=${cursor}`);
        expect(next.body.events.length).toBeLessThanOrEqual(PAGE_BOUND);
        for (const event of next.body.events) seen.add(event.event_id);
        cursor = next.body.next_cursor;
      }
      expect(cursor).toBeUndefined();
      expect(seen.size).toBe(CAP);
      expect((await getJson(`${gw.http}/api/v1/queue/stats?limit=101`)).status).toBe(400);
    });
  },
);

describe('production: unknown events are refused; the catalogue, QUEUE_EVENTS and an admin call open them', () => {
  const DATABASE = 2;
  let gw: TestGateway;
  const token = (scope: string) =>
    new SignJWT({scope})
      .setProtectedHeader({alg: 'HS256'})
      .setSubject('admin-1')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));

  beforeAll(async () => {
    gw = await gateway(DATABASE, {
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: SECRET,
      QUEUE_EVENTS: 'evt_configured',
      RATE_LIMIT_ENABLED: 'false',
    });
  });

  it('refuses an unknown event with 404 EVENT_NOT_OPEN (and gRPC NOT_FOUND), storing nothing', async () => {
    const refused = await postJson(`${gw.http}/api/v1/queue/join`, {event_id: 'evt_unknown'});
    expect(refused.status).toBe(404);
    expect(refused.body.error).toMatchObject({code: 'EVENT_NOT_OPEN', field: 'event_id'});
    expect(refused.body.error.message).toMatch(/QUEUE_EVENTS/);
    const queue = await contractClient('gateway.v1.QueueService', gw.grpc);
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      queue.JoinQueue({event_id: 'evt_unknown'}, new grpc.Metadata(), {deadline: Date.now() + 5000}, resolve),
    );
    queue.close();
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    const keys = await keysWithTtl(await store(DATABASE));
    expect([...keys.keys()].filter((key) => key.includes('evt_unknown'))).toEqual([]);
  });

  it('takes the catalogue event and a QUEUE_EVENTS one', async () => {
    expect((await postJson(`${gw.http}/api/v1/queue/join`, {event_id: CATALOG_EVENT})).status).toBe(202);
    expect((await postJson(`${gw.http}/api/v1/queue/join`, {event_id: 'evt_configured'})).status).toBe(202);
  });

  it('POST /api/v1/queue/events opens an event for a queue:admin token only', async () => {
    const open = (bearer: string) =>
      postJson(
        `${gw.http}/api/v1/queue/events`,
        {event_id: 'evt_opened', open_for_sec: 60},
        {authorization: `Bearer ${bearer}`},
      );
    expect((await postJson(`${gw.http}/api/v1/queue/events`, {event_id: 'evt_opened'})).status).toBe(401);
    expect((await open(await token('reservations payments'))).status).toBe(403);
    const opened = await open(await token('queue:admin'));
    expect(opened.status).toBe(200);
    expect(opened.body.event_id).toBe('evt_opened');
    expect(Date.parse(opened.body.open_until)).toBeGreaterThan(Date.now() + 50_000);
    expect((await postJson(`${gw.http}/api/v1/queue/join`, {event_id: 'evt_opened'})).status).toBe(202);
  });
});

describe('no stored failures', {timeout: 60_000}, () => {
  it('Redis paused under joins: every join not answered 202 is absent from the queue afterwards', async () => {
    const DATABASE = 3;
    const event = 'evt_paused';
    const gw = await gateway(DATABASE, {QUEUE_EVENTS: event, REDIS_COMMAND_TIMEOUT: '300ms'});
    const client = await store(DATABASE);
    const admin = await store(DATABASE);
    const JOINS = 400;
    let pausedAt: Promise<unknown> | undefined;
    const answers = await inParallel(JOINS, 20, async (index) => {
      // A third of the way in, Redis stops serving clients for 1.5 s (it reads and queues their commands).
      if (index === Math.floor(JOINS / 3)) pausedAt = admin.client('PAUSE', 1500, 'ALL');
      const answer = await postJson(`${gw.http}/api/v1/queue/join`, {event_id: event, user_id: `u${index}`});
      return {status: answer.status, code: answer.body.error?.code as string | undefined};
    });
    await pausedAt;
    await sleep(1800); // past the pause: every queued command has run
    const joined = answers.filter((answer) => answer.status === 202).length;
    const failed = answers.filter((answer) => answer.status !== 202);
    expect(failed.length, 'some joins met the pause').toBeGreaterThan(0);
    // Refused for sure (503) or told the outcome is unknown (504); none of them holds a place.
    expect(new Set(failed.map((answer) => `${answer.status} ${answer.code}`))).toEqual(
      new Set(failed.map((answer) => (answer.status === 503 ? '503 UNAVAILABLE' : '504 OUTCOME_UNKNOWN'))),
    );
    expect(await client.zcard(`tacos:queue:{${event}}:waiting`)).toBe(joined);
  });

  it('gRPC JoinQueue with a 1 ms deadline: DEADLINE_EXCEEDED, and nothing stored', async () => {
    const DATABASE = 4;
    const event = 'evt_deadline';
    const gw = await gateway(DATABASE, {QUEUE_EVENTS: event});
    const client = await store(DATABASE);
    const queue = await contractClient('gateway.v1.QueueService', gw.grpc);
    try {
      const codes = await inParallel(50, 10, async (index) => {
        const error = await new Promise<grpc.ServiceError | null>((resolve) =>
          queue.JoinQueue(
            {event_id: event, user_id: `u${index}`},
            new grpc.Metadata(),
            {deadline: Date.now() + 1},
            resolve,
          ),
        );
        return error?.code;
      });
      expect(new Set(codes)).toEqual(new Set([grpc.status.DEADLINE_EXCEEDED]));
    } finally {
      queue.close();
    }
    await sleep(500); // anything still on its way has arrived
    expect(await client.zcard(`tacos:queue:{${event}}:waiting`)).toBe(0);
    const keys = await keysWithTtl(client);
    expect([...keys.keys()].filter((key) => key.includes(':token:'))).toEqual([]);
  });

  it('a join whose answer and withdrawal both come too late says OUTCOME_UNKNOWN; a retry with its Idempotency-Key holds one place', async () => {
    const DATABASE = 5;
    const event = 'evt_unknown_outcome';
    const proxy = await replyHoldingProxy(redis!.port);
    try {
      const gw = await gateway(
        DATABASE,
        {
          SERVER_ENVIRONMENT: 'staging',
          JWT_SECRET: SECRET,
          RATE_LIMIT_ENABLED: 'false',
          QUEUE_EVENTS: event,
          REDIS_COMMAND_TIMEOUT: '300ms',
          QUEUE_SWEEP_INTERVAL: '1h',
        },
        `127.0.0.1:${proxy.port}`,
      );
      const client = await store(DATABASE);
      const join = (key: string) =>
        postJson(`${gw.http}/api/v1/queue/join`, {event_id: event, user_id: 'u1'}, {'idempotency-key': key});
      // A first join loads the script into Redis, so the next runs at its first attempt.
      expect((await join('warm-up')).status).toBe(202);

      proxy.holdAfterScript();
      const first = await join('the-key');
      expect(first.status).toBe(504);
      expect(first.body.error.code).toBe('OUTCOME_UNKNOWN');
      expect(first.body.error.message).toMatch(/same Idempotency-Key/);
      proxy.release();

      const retry = await join('the-key');
      expect(retry.status).toBe(202);
      // The withdrawal ran after the first join: the retry's place is the key's only one.
      expect(await client.zrange(`tacos:queue:{${event}}:waiting`, 0, -1)).toEqual(
        expect.arrayContaining([retry.body.waiting_token]),
      );
      expect(await client.zcard(`tacos:queue:{${event}}:waiting`)).toBe(2);
      expect((await join('the-key')).body.waiting_token).toBe(retry.body.waiting_token);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A TCP proxy to Redis on loopback. Once armed, the first script call (EVAL/EVALSHA) that passes
 * goes through, but Redis's replies from then on are held until `release`.
 */
async function replyHoldingProxy(redisPort: number) {
  const port = await freePort();
  let armed = false;
  let holding = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    sockets.add(downstream).add(upstream);
    downstream.on('data', (chunk) => {
      if (armed && /evalsha|eval/i.test(chunk.toString('latin1'))) {
        armed = false;
        holding = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => (holding ? held.push(() => downstream.write(chunk)) : downstream.write(chunk)));
    const end = () => {
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    holdAfterScript: () => {
      armed = true;
    },
    release: () => {
      holding = false;
      for (const write of held.splice(0)) write();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
