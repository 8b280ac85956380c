/**
 * gRPC-Web and the Connect protocol on the gateway's HTTP port (issue 18): real clients
 * (@connectrpc/connect-node over HTTP/1.1, the services' descriptors from the compiled contracts)
 * against a real gateway and redis-server on 127.0.0.1. What they get is compared with what the
 * native gRPC port answers to the same call: the bridge passes calls to that server.
 */
import {randomUUID} from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type {DescService, FileRegistry} from '@bufbuild/protobuf';
import {Code, ConnectError, createClient, type Transport} from '@connectrpc/connect';
import {createConnectTransport, createGrpcWebTransport} from '@connectrpc/connect-node';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {parseMetrics, type Sample} from '../helpers/metrics.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

const RUN = randomUUID().slice(0, 8);
let eventCount = 0;
const newEvent = (name: string) => `${name}-${RUN}-${++eventCount}`;
const ORIGIN = 'http://localhost:5173';

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
let registry: FileRegistry;
const gw = () => gateway as TestGateway;

const PROTOCOLS = {
  connect: (baseUrl: string) => createConnectTransport({baseUrl, httpVersion: '1.1'}),
  'grpc-web': (baseUrl: string) => createGrpcWebTransport({baseUrl, httpVersion: '1.1'}),
} satisfies Record<string, (baseUrl: string) => Transport>;
type Protocol = keyof typeof PROTOCOLS;

function service(name: string): DescService {
  const desc = registry.getService(name);
  if (!desc) throw new Error(`${name} is not in the contracts`);
  return desc;
}

/** A client of a contract service over one protocol; its methods are those of the registry's descriptor. */
function clientOf(protocol: Protocol, name: string, baseUrl = gw().http): Record<string, any> {
  return createClient(service(name), PROTOCOLS[protocol](baseUrl)) as Record<string, any>;
}

/** The error a call rejects with (fails the test when it answers). */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('the call answered; an error was expected');
}

async function metrics(): Promise<Sample[]> {
  const response = await fetch(`${gw().http}/metrics`, {signal: AbortSignal.timeout(5000)});
  return parseMetrics(await response.text());
}

const handled = (samples: Sample[], method: string, code: string) =>
  samples
    .filter(
      (sample) =>
        sample.name === 'grpc_server_handled_total' &&
        sample.labels.grpc_method === method &&
        sample.labels.grpc_code === code,
    )
    .reduce((sum, sample) => sum + sample.value, 0);

beforeAll(async () => {
  registry = (await loadContractSet()).registry;
  redis = await startRedis();
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    CORS_ALLOW_ORIGINS: ORIGIN,
    // Only the head of the line may enter at once: the second in line waits until the first goes in.
    QUEUE_INSTANT_ADMISSION_POSITIONS: '1',
  });
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await disposeRedis(redis);
});

describe.each(Object.keys(PROTOCOLS) as Protocol[])('%s on the HTTP port', (protocol) => {
  it('joins the queue and reads the status with QueueService', async () => {
    const queue = clientOf(protocol, 'gateway.v1.QueueService');
    const eventId = newEvent(`join-${protocol}`);
    const first = await queue.joinQueue({eventId, userId: 'user-a'});
    const second = await queue.joinQueue({eventId, userId: 'user-b'});
    expect(second.waitingToken).toMatch(/\S{16,}/);
    expect(second.positionHint).toBe(2);
    const status = await queue.getQueueStatus({waitingToken: second.waitingToken});
    expect(status.position).toBe(2);
    expect(status.admissionReady).toBe(false);
    expect((await queue.getQueueStatus({waitingToken: first.waitingToken})).admissionReady).toBe(true);
  });

  it('streams queue updates until admission, then ends the stream normally', async () => {
    const queue = clientOf(protocol, 'gateway.v1.QueueService');
    const live = clientOf(protocol, 'gateway.v1.WebSocketService');
    const eventId = newEvent(`stream-${protocol}`);
    const first = await queue.joinQueue({eventId});
    const second = await queue.joinQueue({eventId});
    const seen: Array<{position: number; admissionReady: boolean}> = [];
    let entered = false;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15_000);
    try {
      for await (const message of live.streamQueueUpdates(
        {waitingToken: second.waitingToken},
        {signal: controller.signal},
      )) {
        const update = message.queueUpdate as {position: number; admissionReady: boolean; waitingToken: string};
        expect(update.waitingToken).toBe(second.waitingToken);
        seen.push({position: update.position, admissionReady: update.admissionReady});
        // Once the stream said where the token is, the head of the line goes in: the token moves up.
        if (seen.length === 1) expect((await queue.requestAdmission(first)).reservationToken).not.toBe('');
        // Admission ready: entering ends the stream from the server's side (the loop then ends).
        if (update.admissionReady && !entered) {
          entered = true;
          await queue.requestAdmission({waitingToken: second.waitingToken});
        }
        expect(seen.length).toBeLessThan(10);
      }
    } finally {
      clearTimeout(timer);
    }
    expect(seen[0]).toEqual({position: 2, admissionReady: false});
    expect(entered).toBe(true);
    expect(seen).toContainEqual({position: 1, admissionReady: true});
  });

  it('refuses a method that needs a bearer token without one, as the gRPC port does', async () => {
    const native = await contractClient('gateway.v1.WebSocketService', gw().grpc);
    const request = {target_user_id: 'user-1', title: 'hi', content: 'hello'};
    const nativeError = (await unaryCall(native, 'SendMessage', request).catch((error: unknown) => error)) as {
      code: number;
      details: string;
    };
    native.close();
    expect(nativeError.code).toBe(grpc.status.UNAUTHENTICATED);
    const live = clientOf(protocol, 'gateway.v1.WebSocketService');
    const error = await failure(live.sendMessage({targetUserId: 'user-1', title: 'hi', content: 'hello'}));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toBe(nativeError.details);

    const gatewayService = clientOf(protocol, 'gateway.v1.GatewayService');
    const booking = await failure(gatewayService.getReservation({reservationId: 'rsv-1'}));
    expect(booking.code).toBe(Code.Unauthenticated);
  });

  it("carries an error's code, message and google.rpc details as the gRPC port sends them", async () => {
    const native = await contractClient('gateway.v1.QueueService', gw().grpc);
    const nativeError = (await unaryCall(native, 'GetQueueStatus', {waiting_token: ''}).catch(
      (error: unknown) => error,
    )) as {code: number; details: string};
    native.close();
    const queue = clientOf(protocol, 'gateway.v1.QueueService');
    const error = await failure(queue.getQueueStatus({waitingToken: ''}));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(nativeError.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.rawMessage).toBe(nativeError.details);
    const errorInfo = registry.getMessage('google.rpc.ErrorInfo')!;
    const badRequest = registry.getMessage('google.rpc.BadRequest')!;
    const [info] = error.findDetails(errorInfo) as unknown as Array<{reason: string; domain: string}>;
    expect(info).toMatchObject({reason: 'INVALID_ARGUMENT', domain: 'tacos.traffic-tacos'});
    const [violations] = error.findDetails(badRequest) as unknown as Array<{fieldViolations: Array<{field: string}>}>;
    expect(violations.fieldViolations[0].field).toBe('waiting_token');
    // One request id for the HTTP request and the gRPC call, in the answer's headers (and trailers).
    const ids = new Set(error.metadata.get('x-request-id')?.split(', '));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^[\w-]{8,}$/);
  });

  it("counts the calls in /metrics with the gRPC port's series", async () => {
    const before = await metrics();
    const queue = clientOf(protocol, 'gateway.v1.QueueService');
    const eventId = newEvent(`metrics-${protocol}`);
    for (let index = 0; index < 3; index += 1) await queue.joinQueue({eventId});
    await failure(queue.getQueueStatus({waitingToken: ''}));
    const after = await metrics();
    expect(handled(after, 'JoinQueue', 'OK') - handled(before, 'JoinQueue', 'OK')).toBe(3);
    expect(
      handled(after, 'GetQueueStatus', 'InvalidArgument') - handled(before, 'GetQueueStatus', 'InvalidArgument'),
    ).toBe(1);
  });
});

/** An update stream opened and read up to its first message; `next` reads on. */
async function openStream(live: Record<string, any>, waitingToken: string) {
  const controller = new AbortController();
  const messages = (
    live.streamQueueUpdates({waitingToken}, {signal: controller.signal}) as AsyncIterable<Record<string, any>>
  )[Symbol.asyncIterator]();
  const first = await messages.next();
  return {first, next: () => messages.next(), close: () => controller.abort()};
}

describe('bounds and stop', () => {
  it("holds the gRPC port's cap of open update streams per waiting token (GRPC_MAX_STREAMS_PER_TOKEN, 4)", async () => {
    const queue = clientOf('connect', 'gateway.v1.QueueService');
    const live = clientOf('grpc-web', 'gateway.v1.WebSocketService');
    const eventId = newEvent('cap');
    await queue.joinQueue({eventId});
    const {waitingToken} = await queue.joinQueue({eventId});
    const open: Array<Awaited<ReturnType<typeof openStream>>> = [];
    try {
      for (let index = 0; index < 4; index += 1) {
        open.push(await openStream(live, waitingToken as string));
        expect(open[index].first.value?.queueUpdate?.position).toBe(2);
      }
      const refused = await failure(openStream(live, waitingToken as string));
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.rawMessage).toMatch(/already has 4 open update streams/);
      // A browser that closes its streams frees their places: the cancel reaches the gRPC call.
      for (const stream of open.splice(0)) stream.close();
      const deadline = Date.now() + 5000;
      for (let attempt = 0; open.length === 0; attempt += 1) {
        const reopened = await openStream(live, waitingToken as string).catch((error: unknown) => {
          if (Date.now() > deadline || attempt > 100) throw error;
          return undefined;
        });
        if (reopened) open.push(reopened);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      for (const stream of open) stream.close();
    }
  });

  it("refuses a request larger than the gRPC port's GRPC_MAX_RECEIVE_MESSAGE_SIZE (64 KiB) with RESOURCE_EXHAUSTED", async () => {
    for (const protocol of Object.keys(PROTOCOLS) as Protocol[]) {
      const queue = clientOf(protocol, 'gateway.v1.QueueService');
      const error = await failure(queue.joinQueue({eventId: 'e'.repeat(70_000)}));
      expect(error.code, protocol).toBe(Code.ResourceExhausted);
    }
  });

  it("ends a stream at the caller's deadline (connect-timeout-ms, grpc-timeout) with DEADLINE_EXCEEDED", async () => {
    const queue = clientOf('connect', 'gateway.v1.QueueService');
    const eventId = newEvent('deadline');
    await queue.joinQueue({eventId});
    const {waitingToken} = await queue.joinQueue({eventId});
    for (const protocol of Object.keys(PROTOCOLS) as Protocol[]) {
      const live = clientOf(protocol, 'gateway.v1.WebSocketService');
      const messages: unknown[] = [];
      const error = await failure(
        (async () => {
          for await (const message of live.streamQueueUpdates({waitingToken}, {timeoutMs: 500})) {
            messages.push(message);
            expect(messages.length).toBeLessThan(10);
          }
        })(),
      );
      expect(error.code, protocol).toBe(Code.DeadlineExceeded);
      expect(messages.length).toBeGreaterThanOrEqual(1);
    }
  });

  it('a stop ends the open streams with UNAVAILABLE, and finishes', async () => {
    const stopping = await startTestGateway({REDIS_ADDRESS: redis!.address, SERVER_SHUTDOWN_GRACE: '2s'});
    await waitForReady(stopping);
    const queue = clientOf('connect', 'gateway.v1.QueueService', stopping.http);
    const eventId = newEvent('stop');
    await queue.joinQueue({eventId});
    const {waitingToken} = await queue.joinQueue({eventId});
    const streams = await Promise.all(
      (Object.keys(PROTOCOLS) as Protocol[]).map((protocol) =>
        openStream(clientOf(protocol, 'gateway.v1.WebSocketService', stopping.http), waitingToken as string),
      ),
    );
    const closed = stopping.close();
    for (const stream of streams) expect((await failure(stream.next())).code).toBe(Code.Unavailable);
    await closed;
  });
});

describe('browsers on another origin', () => {
  it('may send the Connect headers (preflight) and read the gRPC status headers, from CORS origins only', async () => {
    const preflight = await fetch(`${gw().http}/gateway.v1.QueueService/JoinQueue`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,connect-protocol-version,connect-timeout-ms,x-grpc-web',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const header of [
      'connect-protocol-version',
      'connect-timeout-ms',
      'grpc-timeout',
      'x-grpc-web',
      'x-user-agent',
    ])
      expect(allowed).toContain(header);

    const call = await fetch(`${gw().http}/gateway.v1.QueueService/GetQueueStatus`, {
      method: 'POST',
      headers: {origin: ORIGIN, 'content-type': 'application/json', 'connect-protocol-version': '1'},
      body: JSON.stringify({waitingToken: ''}),
    });
    expect(call.status).toBe(400);
    expect(call.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const exposed = (call.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const header of ['grpc-status', 'grpc-message', 'grpc-status-details-bin']) expect(exposed).toContain(header);
    expect(((await call.json()) as {code: string}).code).toBe('invalid_argument');

    const stranger = await fetch(`${gw().http}/gateway.v1.QueueService/JoinQueue`, {
      method: 'OPTIONS',
      headers: {origin: 'http://evil.example', 'access-control-request-method': 'POST'},
    });
    await stranger.arrayBuffer();
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('with the gRPC port off', () => {
  it('still serves Connect and gRPC-Web, through the private socket', async () => {
    const closed = await startTestGateway({REDIS_ADDRESS: redis!.address, GRPC_ENABLED: 'false'});
    try {
      await waitForReady(closed);
      expect(closed.grpcPort).toBeUndefined();
      for (const protocol of Object.keys(PROTOCOLS) as Protocol[]) {
        const queue = clientOf(protocol, 'gateway.v1.QueueService', closed.http);
        const joined = await queue.joinQueue({eventId: newEvent(`closed-${protocol}`)});
        expect(joined.positionHint).toBe(1);
      }
    } finally {
      await closed.close();
    }
  });
});
