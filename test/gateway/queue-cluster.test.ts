/**
 * The queue on a real Redis Cluster (issue 2, "The queue", point 8): every key of one event carries
 * the hash tag {eventId}, and with REDIS_CLUSTER_MODE=true the gateway serves join, status, enter,
 * leave and the stream for events whose slots live on different nodes.
 */
import {randomUUID} from 'node:crypto';
import {status as GrpcStatus} from '@grpc/grpc-js';
import type {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {queueKeys} from '../../src/services/gateway/queue/keys.js';
import {DEFAULT_QUEUE_SETTINGS, QueueService} from '../../src/services/gateway/queue/queue-service.js';
import {createLogger} from '../../src/services/logging.js';
import {closeRedisClient, createRedisClient, type RedisClient} from '../../src/services/redis/client.js';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, streamCall, unaryCall} from '../helpers/grpc-client.js';
import type {RedisProcess} from '../helpers/redis.js';
import {startRedisCluster, type RedisCluster} from '../helpers/redis-cluster.js';

type Client = Awaited<ReturnType<typeof contractClient>>;

const RUN = randomUUID().slice(0, 8);

let nodes: RedisProcess[] = [];
/** A plain (non-cluster) connection to each node, to look at what it holds. */
let direct: Redis[] = [];
let cluster: RedisCluster | undefined;
const gateways: TestGateway[] = [];
const clients: Client[] = [];
const closers: Array<() => Promise<void> | void> = [];
/** Watchers re-read every 10 s: a prompt stream update is the change notification. Position 1 instant. */
let gw: TestGateway;
let queueClient: Client;
let streamClient: Client;
/** Slot ranges → index of the node that serves them. */
let slotOwners: Array<{from: number; to: number; node: number}> = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(
  what: string,
  timeoutMs: number,
  intervalMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

const seedNodes = () => nodes.map((node) => node.address).join(',');

async function startClusterGateway(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startTestGateway({REDIS_ADDRESS: seedNodes(), REDIS_CLUSTER_MODE: 'true', ...env});
  gateways.push(gateway);
  await waitForReady(gateway, 10_000);
  return gateway;
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  ({nodes, direct} = cluster);
  const slots = (await direct[0].call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
  slotOwners = slots.map(([from, to, [, port]]) => ({
    from,
    to,
    node: nodes.findIndex((node) => node.port === Number(port)),
  }));
  expect(new Set(slotOwners.map((owner) => owner.node))).toEqual(new Set([0, 1, 2]));

  gw = await startClusterGateway({QUEUE_SWEEP_INTERVAL: '10s', QUEUE_INSTANT_ADMISSION_POSITIONS: '1'});
  queueClient = await contractClient('gateway.v1.QueueService', gw.grpc);
  streamClient = await contractClient('gateway.v1.WebSocketService', gw.grpc);
  clients.push(queueClient, streamClient);
}, 90_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const close of closers) await close();
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await cluster?.close();
});

async function slotOf(key: string): Promise<number> {
  return Number(await direct[0].call('CLUSTER', 'KEYSLOT', key));
}

async function nodeOfEvent(eventId: string): Promise<number> {
  const slot = await slotOf(queueKeys(eventId).waiting);
  const owner = slotOwners.find((range) => slot >= range.from && slot <= range.to);
  if (!owner) throw new Error(`no node serves slot ${slot}`);
  return owner.node;
}

/** One event id whose keys live on each node, in node order. */
async function eventPerNode(name: string): Promise<string[]> {
  const found: Array<string | undefined> = [undefined, undefined, undefined];
  for (let index = 0; index < 200 && found.includes(undefined); index++) {
    const candidate = `${name}-${RUN}-${index}`;
    const node = await nodeOfEvent(candidate);
    found[node] ??= candidate;
  }
  if (found.includes(undefined)) throw new Error('could not find an event id for every node');
  return found as string[];
}

/** The keys a node holds for an event (those with its hash tag). */
async function keysOn(node: number, eventId: string): Promise<string[]> {
  return direct[node].keys(`tacos:queue:\\{${eventId}\\}:*`);
}

const restStatus = (token: string) => getJson(`${gw.http}/api/v1/queue/status?token=${encodeURIComponent(token)}`);
const restEnter = (token: string) => postJson(`${gw.http}/api/v1/queue/enter`, {waiting_token: token});
const restLeave = (token: string) =>
  getJson(`${gw.http}/api/v1/queue/leave?token=${encodeURIComponent(token)}`, {method: 'DELETE'});

async function join(eventId: string, viaGrpc: boolean): Promise<{token: string; position: number}> {
  if (viaGrpc) {
    const response = await unaryCall(queueClient, 'JoinQueue', {event_id: eventId});
    return {token: response.waiting_token, position: response.position_hint};
  }
  const response = await postJson(`${gw.http}/api/v1/queue/join`, {event_id: eventId});
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return {token: response.body.waiting_token, position: response.body.position_hint};
}

describe('8. the queue on a Redis Cluster', () => {
  it('every key of one event carries the hash tag {eventId}, so all hash to one slot', async () => {
    const eventId = `tagged-${RUN}`;
    const keys = queueKeys(eventId);
    const names = [
      keys.seq,
      keys.waiting,
      keys.heartbeat,
      keys.bucket,
      keys.admits,
      keys.stats,
      keys.changes,
      keys.token('some-token'),
      keys.idempotency('some-key'),
      keys.reservationToken('rt_some'),
    ];
    for (const name of names) expect(name).toContain(`{${eventId}}`);
    const slots = new Set(await Promise.all(names.map((name) => slotOf(name))));
    expect(slots.size).toBe(1);
    expect([...slots][0]).toBe(await slotOf(eventId));
    // And a different event is (here) a different slot: the tag decides, not the prefix.
    expect(await slotOf(queueKeys(`other-${RUN}`).waiting)).not.toBe([...slots][0]);
  });

  it('join, status, stream, leave and enter work for events on each of the three nodes', async () => {
    const events = await eventPerNode('cluster');
    for (const [node, eventId] of events.entries()) {
      const first = await join(eventId, false);
      const second = await join(eventId, true);
      const third = await join(eventId, false);
      expect([first.position, second.position, third.position]).toEqual([1, 2, 3]);
      const grpcStatus = await unaryCall(queueClient, 'GetQueueStatus', {waiting_token: third.token});
      expect(grpcStatus).toMatchObject({status: 'QUEUE_STATUS_WAITING', position: 3});
      expect((await restStatus(second.token)).body).toMatchObject({status: 'waiting', position: 2});

      const stream = streamCall(streamClient, 'StreamQueueUpdates', {waiting_token: third.token});
      try {
        await stream.waitFor((message) => message.queue_update.position === 3, 3000);
        const started = Date.now();
        expect((await restLeave(first.token)).status).toBe(200);
        await stream.waitFor((message) => message.queue_update.position === 2, 2000);
        expect(Date.now() - started).toBeLessThan(1000);

        expect((await restEnter(second.token)).body).toMatchObject({admission: 'granted'});
        const ready = await stream.waitFor((message) => message.queue_update.position === 1, 2000);
        expect(ready.queue_update.admission_ready).toBe(true);
        const twice = await restEnter(second.token);
        expect(twice.status).toBe(409);
        expect(twice.body.error.code).toBe('ALREADY_ADMITTED');
        expect((await restStatus(second.token)).body).toMatchObject({status: 'admitted', ready_for_entry: false});

        const granted = await unaryCall(queueClient, 'RequestAdmission', {waiting_token: third.token});
        expect(granted.admission).toBe('ADMISSION_STATUS_GRANTED');
        const ended = await Promise.race([stream.ended, sleep(3000).then(() => undefined)]);
        expect(ended?.code).toBe(GrpcStatus.OK);
      } finally {
        stream.cancel();
      }
      expect((await restLeave(first.token)).status).toBe(200);

      const stats = await unaryCall(queueClient, 'GetQueueStats', {event_id: eventId});
      expect(stats.events[0]).toMatchObject({
        event_id: eventId,
        total_waiting: 0,
        total_admitted: 2,
        admission_rate_per_minute: 2,
      });

      // Everything this event wrote is on its own node, and nowhere else.
      const held = await Promise.all([0, 1, 2].map((index) => keysOn(index, eventId)));
      expect(held[node].length).toBeGreaterThan(0);
      for (const [index, keys] of held.entries()) if (index !== node) expect(keys).toEqual([]);
      const slots = new Set(await Promise.all(held[node].map((key) => slotOf(key))));
      expect(slots.size).toBe(1);
    }
  });

  it('concurrent joins to events on different nodes each get a gap-free order', async () => {
    const events = await eventPerNode('cluster-burst');
    const joined = await Promise.all(
      Array.from({length: 150}, (_, index) =>
        join(events[index % 3], index % 5 === 0).then((result) => ({...result, eventId: events[index % 3]})),
      ),
    );
    for (const eventId of events) {
      const positions = joined
        .filter((entry) => entry.eventId === eventId)
        .map((entry) => entry.position)
        .sort((a, b) => a - b);
      expect(positions).toEqual(Array.from({length: 50}, (_, index) => index + 1));
    }
  });

  it('reservation tokens are single use on the cluster', async () => {
    const client: RedisClient = createRedisClient(
      {address: seedNodes(), database: 0, clusterMode: true, commandTimeoutMs: 2000},
      'queue-cluster-test',
    );
    closers.push(() => closeRedisClient(client));
    const service = new QueueService(client, DEFAULT_QUEUE_SETTINGS, createLogger('queue-cluster-test', 'silent'));
    closers.push(() => service.close());
    await eventually('the cluster client connects', 10_000, 50, async () =>
      client.status === 'ready' ? true : undefined,
    );
    for (const eventId of await eventPerNode('cluster-rtoken')) {
      const {token} = await join(eventId, false);
      const granted = await restEnter(token);
      expect(granted.status).toBe(200);
      expect(await service.consumeReservationToken(granted.body.reservation_token)).toMatchObject({eventId});
      expect(await service.consumeReservationToken(granted.body.reservation_token)).toBeUndefined();
    }
  });

  // Last: a 1 s heartbeat sweeper expires the waiting tokens of every event on this cluster.
  it('the sweeper expires silent tokens on every node, and those behind move up', async () => {
    const fast = await startClusterGateway({QUEUE_HEARTBEAT_TTL: '1s', QUEUE_SWEEP_INTERVAL: '200ms'});
    const events = await eventPerNode('cluster-expiry');
    const pairs: Array<{silent: string; polled: string}> = [];
    for (const eventId of events) {
      const silent = (await postJson(`${fast.http}/api/v1/queue/join`, {event_id: eventId})).body
        .waiting_token as string;
      const polled = (await postJson(`${fast.http}/api/v1/queue/join`, {event_id: eventId})).body
        .waiting_token as string;
      pairs.push({silent, polled});
    }
    await eventually('every silent token expires and the one behind moves up', 5000, 100, async () => {
      const positions = await Promise.all(
        pairs.map(
          async ({polled}) =>
            (await getJson(`${fast.http}/api/v1/queue/status?token=${encodeURIComponent(polled)}`)).body.position,
        ),
      );
      return positions.every((position) => position === 1) ? true : undefined;
    });
    for (const {silent} of pairs) {
      expect((await getJson(`${fast.http}/api/v1/queue/status?token=${encodeURIComponent(silent)}`)).body.status).toBe(
        'expired',
      );
    }
    await fast.close();
  });
});
