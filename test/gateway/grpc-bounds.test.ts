/**
 * The gateway's gRPC door under abuse (issue 15): sockets a header flood leaves behind, connections
 * that never finish the handshake, too many connections, streams or bytes, bad input answered
 * INVALID_ARGUMENT, idle update streams that cost Redis nothing, and every refusal in /metrics.
 * A real redis-server on a free port; gateways in this process on 127.0.0.1:0.
 */
import {readdirSync, readFileSync} from 'node:fs';
import {connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders} from 'node:http2';
import {connect as netConnect, type Socket} from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, streamCall, unaryCall, type StreamReader} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

type AnyClient = grpc.Client & Record<string, any>;

let redis: RedisProcess;
let gateway: TestGateway;
const clients: AnyClient[] = [];
const sessions: ClientHttp2Session[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  redis = await startRedis();
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    GRPC_HANDSHAKE_TIMEOUT: '500ms',
    GRPC_KEEPALIVE_TIMEOUT: '1s',
    GRPC_MAX_STREAMS_PER_TOKEN: '2',
    // No admission becomes possible with time alone: an idle stream has no reason to read.
    QUEUE_ADMISSION_MIN_WAIT: '1h',
  });
  await waitForReady(gateway);
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const session of sessions) session.destroy();
  for (const socket of sockets) socket.destroy();
  await gateway?.close();
  await disposeRedis(redis);
});

async function client(service: string, address = gateway.grpc): Promise<AnyClient> {
  const created = await contractClient(service, address);
  clients.push(created);
  return created;
}

function port(address: string): number {
  return Number(address.split(':').at(-1));
}

/** Sockets of this process in CLOSE-WAIT whose local port is `localPort` (/proc/self/net/tcp, state 08). */
function closeWaitSockets(localPort: number): number {
  return readFileSync('/proc/self/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === '08' && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === localPort).length;
}

const openFds = () => readdirSync('/proc/self/fd').length;

/** Polls `check` every 100 ms until it returns true or `timeoutMs` passes; returns its last answer. */
async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** One raw HTTP/2 request; resolves with the response headers and trailers, merged. */
function rawRequest(headers: Record<string, string>, body?: Buffer): Promise<IncomingHttpHeaders> {
  const session = http2Connect(`http://${gateway.grpc}`);
  sessions.push(session);
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response within 5 s')), 5000);
    const stream = session.request({':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers});
    stream.on('error', () => undefined);
    let received: IncomingHttpHeaders = {};
    stream.on('response', (response) => (received = {...response}));
    stream.on('trailers', (trailers) => (received = {...received, ...trailers}));
    stream.resume();
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(received);
      session.close();
    });
    stream.end(body);
  });
}

/** A gRPC length-prefixed message frame. */
function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

async function refusals(): Promise<Record<string, number>> {
  const response = await fetch(`${gateway.http}/metrics`, {signal: AbortSignal.timeout(5000)});
  const samples = parseMetrics(await response.text()).filter(
    (sample) => sample.name === 'gateway_refusals_total' && sample.labels.door === 'grpc',
  );
  return Object.fromEntries(samples.map((sample) => [sample.labels.reason, sample.value]));
}

describe('gRPC transport bounds', () => {
  it('closes the sessions a header-block flood leaves half dead: no CLOSE-WAIT socket, no extra fds', async () => {
    const grpcPort = port(gateway.grpc);
    const fdsBefore = openFds();
    const big = 'x'.repeat(128 * 1024);
    await Promise.all(
      Array.from(
        {length: 200},
        () =>
          new Promise<void>((resolve) => {
            const session = http2Connect(`http://${gateway.grpc}`, {maxSendHeaderBlockLength: 1 << 24});
            session.on('error', () => undefined);
            const done = () => {
              clearTimeout(timer);
              session.destroy();
              resolve();
            };
            const timer = setTimeout(done, 3000);
            const stream = session.request({
              ':method': 'POST',
              ':path': '/gateway.v1.QueueService/JoinQueue',
              'content-type': 'application/grpc',
              'x-big': big,
            });
            stream.on('error', () => undefined);
            stream.on('close', done);
            stream.end();
          }),
      ),
    );
    const cleared = await eventually(() => closeWaitSockets(grpcPort) === 0, 8000);
    expect(cleared, `${closeWaitSockets(grpcPort)} sockets still in CLOSE-WAIT`).toBe(true);
    // Closing a socket frees its descriptor a moment later.
    expect(
      await eventually(() => openFds() < fdsBefore + 10, 3000),
      `${openFds() - fdsBefore} more fds than before`,
    ).toBe(true);
    // The gateway still serves.
    const queue = await client('gateway.v1.QueueService');
    expect((await unaryCall(queue, 'JoinQueue', {event_id: 'evt_after_flood'})).waiting_token).toBeTruthy();
  }, 30_000);

  it('drops connections that send nothing, half a preface, or no SETTINGS, within the handshake timeout', async () => {
    const openings = [
      Buffer.alloc(0),
      Buffer.from('PRI * HTTP/2.0\r\n'),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    ];
    const closedWithin = await Promise.all(
      openings.map(
        (opening) =>
          new Promise<number>((resolve) => {
            const started = Date.now();
            const socket = netConnect(port(gateway.grpc), '127.0.0.1', () => socket.write(opening));
            sockets.push(socket);
            socket.on('error', () => undefined);
            socket.resume();
            const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), 5000);
            socket.on('close', () => {
              clearTimeout(timer);
              resolve(Date.now() - started);
            });
          }),
      ),
    );
    for (const ms of closedWithin) expect(ms).toBeLessThan(3000);
  }, 15_000);

  it('refuses a message over the receive limit with RESOURCE_EXHAUSTED, not after reading it', async () => {
    const queue = await client('gateway.v1.QueueService');
    const error = (await unaryCall(queue, 'JoinQueue', {event_id: 'evt_big', user_id: 'u'.repeat(100_000)}).catch(
      (failure: unknown) => failure,
    )) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error.details).toMatch(/65536/);
  });

  it('answers a request that is not valid protobuf with INVALID_ARGUMENT, not INTERNAL', async () => {
    // A tag whose varint never ends.
    const response = await rawRequest(
      {':path': '/gateway.v1.QueueService/JoinQueue'},
      frame(Buffer.from([0xff, 0xff, 0xff])),
    );
    expect(Number(response['grpc-status'])).toBe(grpc.status.INVALID_ARGUMENT);
    expect(decodeURIComponent(String(response['grpc-message']))).toMatch(/not a valid protobuf message/);
  });

  it('answers a malformed grpc-timeout with INVALID_ARGUMENT, not INTERNAL', async () => {
    const body = frame(Buffer.from([0x0a, 0x03, 0x65, 0x76, 0x74]));
    for (const timeout of ['soon', '-5S', '123456789S']) {
      const response = await rawRequest({':path': '/gateway.v1.QueueService/JoinQueue', 'grpc-timeout': timeout}, body);
      expect(Number(response['grpc-status']), timeout).toBe(grpc.status.INVALID_ARGUMENT);
      expect(decodeURIComponent(String(response['grpc-message']))).toMatch(/grpc-timeout/);
    }
  });

  it('caps the open update streams of one waiting token', async () => {
    const queue = await client('gateway.v1.QueueService');
    const updates = await client('gateway.v1.WebSocketService');
    const {waiting_token: token} = await unaryCall(queue, 'JoinQueue', {event_id: 'evt_stream_cap'});
    const open = [
      streamCall(updates, 'StreamQueueUpdates', {waiting_token: token}),
      streamCall(updates, 'StreamQueueUpdates', {waiting_token: token}),
    ];
    await Promise.all(open.map((stream) => stream.waitFor(() => true, 5000)));
    const third = streamCall(updates, 'StreamQueueUpdates', {waiting_token: token});
    const status = await Promise.race([
      third.ended,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000)),
    ]);
    expect(status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Closing one makes room again, once the server has seen the cancel.
    open[0].cancel();
    let again: StreamReader<Record<string, any>> | undefined;
    for (let attempt = 0; attempt < 30 && !again; attempt++) {
      const next = streamCall(updates, 'StreamQueueUpdates', {waiting_token: token});
      const first = await Promise.race([
        next
          .waitFor(() => true, 5000)
          .then(
            () => 'message',
            () => 'ended',
          ),
        next.ended.then(() => 'ended'),
      ]);
      if (first === 'message') again = next;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(again).toBeDefined();
    for (const stream of [open[1], again]) stream?.cancel();
  });

  it('keeps 50 idle update streams almost free for Redis (no status read per stream per second)', async () => {
    const queue = await client('gateway.v1.QueueService');
    const updates = await client('gateway.v1.WebSocketService');
    const streams: Array<StreamReader<Record<string, any>>> = [];
    for (let index = 0; index < 50; index++) {
      const {waiting_token: token} = await unaryCall(queue, 'JoinQueue', {event_id: 'evt_idle_streams'});
      streams.push(streamCall(updates, 'StreamQueueUpdates', {waiting_token: token}));
    }
    await Promise.all(streams.map((stream) => stream.waitFor(() => true, 10_000)));
    const probe = new Redis({host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1});
    // Script calls: each status read is one; the sweep makes one per event per second.
    const scriptCalls = async () =>
      Number(/cmdstat_evalsha:calls=(\d+)/.exec(await probe.info('commandstats'))?.[1] ?? 0);
    try {
      const before = await scriptCalls();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // A handful of events swept 3 times; 50 streams reading every second would add 150.
      expect((await scriptCalls()) - before).toBeLessThan(30);
    } finally {
      probe.disconnect();
      for (const stream of streams) stream.cancel();
    }
  }, 30_000);

  it('counts every refusal in /metrics by reason', async () => {
    const counted = await refusals();
    for (const reason of [
      'dead_session',
      'handshake_timeout',
      'message_too_large',
      'invalid_message',
      'invalid_timeout',
      'streams_per_token',
    ]) {
      expect(counted[reason] ?? 0, reason).toBeGreaterThan(0);
    }
  });
});

describe('gRPC connection cap', () => {
  let capped: TestGateway;

  beforeAll(async () => {
    capped = await startTestGateway({REDIS_ADDRESS: redis.address, GRPC_MAX_CONNECTIONS: '2'});
    await waitForReady(capped);
  });

  afterAll(async () => {
    await capped?.close();
  });

  /** An HTTP/2 connection: 'settled' once the server's SETTINGS arrived, 'closed' if it was closed first. */
  function connection(): Promise<'settled' | 'closed'> {
    const session = http2Connect(`http://${capped.grpc}`);
    sessions.push(session);
    session.on('error', () => undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('closed'), 5000);
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        resolve('settled');
      });
      session.once('close', () => {
        clearTimeout(timer);
        resolve('closed');
      });
    });
  }

  it('refuses the connection over GRPC_MAX_CONNECTIONS and counts it', async () => {
    expect(await connection()).toBe('settled');
    expect(await connection()).toBe('settled');
    expect(await connection()).toBe('closed');
    const response = await fetch(`${capped.http}/metrics`, {signal: AbortSignal.timeout(5000)});
    const sample = parseMetrics(await response.text()).find(
      (each) =>
        each.name === 'gateway_refusals_total' &&
        each.labels.door === 'grpc' &&
        each.labels.reason === 'connection_limit',
    );
    expect(sample?.value).toBe(1);
  });
});
