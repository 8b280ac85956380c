/**
 * The users' update streams (WebSocketService.StreamReservationUpdates / StreamPaymentUpdates) and
 * SendMessage: a stream shows a hold, a payment's changes, a confirm, a cancel and a hold lapsing
 * (published by the reservation mock on its own); each status once, whoever published it; one user
 * never sees another's; a message says whether a stream took it; a second gateway on the same Redis
 * delivers what the first made.
 * Real parts: Redis, the reservation and payment mocks (publishing their changes) and gateways, on loopback.
 */
import * as grpc from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DEFAULT_USER_UPDATES_OPTIONS, UserUpdates} from '../../src/services/gateway/live/user-updates.js';
import {createLogger} from '../../src/services/logging.js';
import {publishUserEvent, reservationEvent} from '../../src/services/redis/user-channel.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, streamCall, unaryCall, type StreamReader} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {admit, backendEnv, bearer, DEV_SECRET, send, startStackGateway, startTestMock} from '../helpers/stack.js';

const CONCERT = 'evt_2026_concert';
const WAIT_MS = 10_000;
/** Attempts at a message that proves a stream is listening (each waits up to a second for receipts). */
const LISTEN_ATTEMPTS = 20;

type Message = Record<string, any>;

let redis: RedisProcess | undefined;
const mocks: RunningMock[] = [];
const gateways: TestGateway[] = [];
const clients: grpc.Client[] = [];
const streams: Array<StreamReader<Message>> = [];
let gateway: TestGateway;
let sender: string;

beforeAll(async () => {
  redis = await startRedis();
  const reservation = await startTestMock('reservation', {}, publishing());
  const payment = await startTestMock('payment', {scenario: 'APPROVE'}, publishing());
  mocks.push(reservation, payment);
  gateway = await gatewayOn(reservation, payment);
  sender = await bearer('ops', DEV_SECRET, 'messages:send');
});

afterAll(async () => {
  for (const stream of streams) stream.cancel();
  for (const client of clients) client.close();
  await Promise.allSettled(gateways.map((running) => running.close()));
  await Promise.allSettled(mocks.map((mock) => mock.close()));
  await disposeRedis(redis);
});

/** The environment of a mock that publishes its changes on the test's Redis, as under `tacos up`. */
function publishing(): Record<string, string> {
  return {MOCK_PUBLISH_UPDATES: 'true', REDIS_ADDRESS: redis!.address};
}

async function gatewayOn(reservation: RunningMock, payment: RunningMock): Promise<TestGateway> {
  const started = await startStackGateway(backendEnv(reservation, payment, redis!.address), {
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '100',
  });
  gateways.push(started);
  return started;
}

function authorized(authorization: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', authorization);
  return metadata;
}

async function client(service: string, on = gateway): Promise<grpc.Client & Record<string, any>> {
  const made = await contractClient(service, on.grpc);
  clients.push(made);
  return made;
}

interface UserSide {
  user: string;
  auth: string;
  session: string;
  reservations: StreamReader<Message>;
  payments: StreamReader<Message>;
}

/** Opens a user's two streams on `on` and waits until both listen (a message to each one's session is delivered). */
async function openStreams(user: string, on = gateway, request: Message = {}): Promise<UserSide> {
  const auth = await bearer(user);
  const session = `${user}-${gateways.indexOf(on)}-${streams.length}`;
  const updates = await client('gateway.v1.WebSocketService', on);
  const reservations = streamCall<Message>(
    updates,
    'StreamReservationUpdates',
    {session_id: `${session}-r`, ...request},
    authorized(auth),
  );
  const payments = streamCall<Message>(
    updates,
    'StreamPaymentUpdates',
    {session_id: `${session}-p`, ...request},
    authorized(auth),
  );
  streams.push(reservations, payments);
  await untilListening(user, `${session}-r`);
  await untilListening(user, `${session}-p`);
  return {user, auth, session, reservations, payments};
}

async function sendMessage(request: Message, auth = sender): Promise<Message> {
  return unaryCall(await client('gateway.v1.WebSocketService'), 'SendMessage', request, authorized(auth));
}

async function untilListening(user: string, session: string): Promise<void> {
  for (let attempt = 0; attempt < LISTEN_ATTEMPTS; attempt++) {
    const answer = await sendMessage({target_user_id: user, target_session_id: session, content: 'hello'});
    if (answer.delivered) return;
  }
  throw new Error(`the stream of ${user} (session ${session}) never took a message`);
}

/** The updates (not messages) a stream has shown. */
function updatesOf(stream: StreamReader<Message>): Message[] {
  return stream.messages
    .filter((message) => message.type !== 'EVENT_TYPE_MESSAGE')
    .map((message) => message.reservation_update ?? message.payment_update);
}

/** Waits (bounded) for the first update on the stream that matches; its reservation_update or payment_update. */
async function update(stream: StreamReader<Message>, match: (update: Message) => boolean): Promise<Message> {
  const found = await stream.waitFor((message) => {
    const shown = message.reservation_update ?? message.payment_update;
    return message.type !== 'EVENT_TYPE_MESSAGE' && shown !== undefined && shown !== null && match(shown);
  }, WAIT_MS);
  return found.reservation_update ?? found.payment_update;
}

/** Waits until a marker message reached the stream: everything published before it has arrived too. */
async function settled(side: UserSide, stream: StreamReader<Message>, kind: 'r' | 'p'): Promise<void> {
  const marker = `marker ${Math.random()}`;
  const answer = await sendMessage({
    target_user_id: side.user,
    target_session_id: `${side.session}-${kind}`,
    content: marker,
  });
  expect(answer.delivered).toBe(true);
  await stream.waitFor(
    (message) => (message.reservation_update ?? message.payment_update)?.message === marker,
    WAIT_MS,
  );
}

async function hold(side: UserSide, on = gateway): Promise<Message> {
  const token = await admit(on.http, CONCERT, side.user);
  const booking = await client('gateway.v1.GatewayService', on);
  return unaryCall(
    booking,
    'CreateReservation',
    {event_id: CONCERT, quantity: 1, reservation_token: token},
    authorized(side.auth),
  );
}

describe('reservation and payment update streams', () => {
  it('show a hold, the payment moving to completed and the confirm, each status once', async () => {
    const side = await openStreams('alice');
    const booking = await client('gateway.v1.GatewayService');
    const created = await hold(side);
    const reservationId = created.reservation_id as string;
    const held = await update(side.reservations, (shown) => shown.reservation_id === reservationId);
    expect(held).toMatchObject({new_status: 'RESERVATION_STATUS_HOLD', event_type: 'RESERVATION_EVENT_TYPE_CREATED'});
    expect(Number(held.hold_expires_at.seconds)).toBe(Number(created.hold_expires_at.seconds));

    const intent = await unaryCall(
      booking,
      'CreatePaymentIntent',
      {reservation_id: reservationId},
      authorized(side.auth),
    );
    const processed = await send(gateway.http, 'POST', '/api/v1/payment/process', {
      auth: side.auth,
      body: {payment_intent_id: intent.payment_intent_id},
    });
    expect(processed.status, processed.text).toBe(200);
    await update(side.payments, (shown) => shown.new_status === 'PAYMENT_STATUS_COMPLETED');
    await unaryCall(
      booking,
      'ConfirmReservation',
      {reservation_id: reservationId, payment_intent_id: intent.payment_intent_id},
      authorized(side.auth),
    );
    await update(side.reservations, (shown) => shown.new_status === 'RESERVATION_STATUS_CONFIRMED');

    // The gateway and the mocks both published each change: the streams show each status once, in order.
    await settled(side, side.reservations, 'r');
    await settled(side, side.payments, 'p');
    expect(updatesOf(side.reservations).map((shown) => shown.event_type)).toEqual([
      'RESERVATION_EVENT_TYPE_CREATED',
      'RESERVATION_EVENT_TYPE_CONFIRMED',
    ]);
    const payments = updatesOf(side.payments);
    expect(payments.map((shown) => shown.new_status)).toEqual(
      expect.arrayContaining(['PAYMENT_STATUS_PENDING', 'PAYMENT_STATUS_COMPLETED']),
    );
    expect(new Set(payments.map((shown) => shown.new_status)).size).toBe(payments.length);
    expect(payments.at(-1)).toMatchObject({
      payment_intent_id: intent.payment_intent_id,
      new_status: 'PAYMENT_STATUS_COMPLETED',
      event_type: 'PAYMENT_EVENT_TYPE_COMPLETED',
    });
  });

  it('show a payment the payment mock settles on its own after the answer', async () => {
    const side = await openStreams('olivia');
    const created = await hold(side);
    // The web client's payment: a scenario, never a process call; the mock settles it by itself.
    const intent = await send(gateway.http, 'POST', '/api/v1/payments/intent', {
      auth: side.auth,
      body: {reservation_id: created.reservation_id, amount: 1, currency: 'KRW', scenario: 'fail'},
    });
    expect(intent.status, intent.text).toBe(200);
    const failed = await update(side.payments, (shown) => shown.event_type === 'PAYMENT_EVENT_TYPE_FAILED');
    expect(failed).toMatchObject({
      payment_intent_id: intent.json.payment_intent_id,
      new_status: 'PAYMENT_STATUS_FAILED',
    });
  });

  it('show a cancel, and follow only the reservations named', async () => {
    const everything = await openStreams('bob');
    const first = await hold(everything);
    const second = await hold(everything);
    const named = await openStreams('bob', gateway, {reservation_ids: [second.reservation_id]});
    const booking = await client('gateway.v1.GatewayService');
    for (const reservation of [first, second])
      await unaryCall(
        booking,
        'CancelReservation',
        {reservation_id: reservation.reservation_id},
        authorized(everything.auth),
      );
    const cancelled = await update(
      named.reservations,
      (shown) => shown.event_type === 'RESERVATION_EVENT_TYPE_CANCELLED',
    );
    expect(cancelled).toMatchObject({
      reservation_id: second.reservation_id,
      old_status: 'RESERVATION_STATUS_HOLD',
      new_status: 'RESERVATION_STATUS_CANCELLED',
    });
    await update(
      everything.reservations,
      (shown) => shown.reservation_id === first.reservation_id && shown.new_status === 'RESERVATION_STATUS_CANCELLED',
    );
    await settled(named, named.reservations, 'r');
    expect(updatesOf(named.reservations).map((shown) => shown.reservation_id)).toEqual([second.reservation_id]);
  });

  it('show a hold lapsing, which the reservation mock publishes on its own', async () => {
    const shortHolds = await startTestMock('reservation', {holdMs: 1000}, publishing());
    mocks.push(shortHolds);
    const lapsing = await gatewayOn(shortHolds, mocks[1]);
    const side = await openStreams('carol', lapsing);
    const created = await hold(side, lapsing);
    const expired = await update(side.reservations, (shown) => shown.event_type === 'RESERVATION_EVENT_TYPE_EXPIRED');
    expect(expired).toMatchObject({
      reservation_id: created.reservation_id,
      old_status: 'RESERVATION_STATUS_HOLD',
      new_status: 'RESERVATION_STATUS_EXPIRED',
    });
  });

  it("never show one user another user's updates", async () => {
    const dave = await openStreams('dave');
    const erin = await openStreams('erin');
    const created = await hold(dave);
    await update(dave.reservations, (shown) => shown.reservation_id === created.reservation_id);
    await settled(erin, erin.reservations, 'r');
    await settled(erin, erin.payments, 'p');
    expect(updatesOf(erin.reservations)).toEqual([]);
    expect(updatesOf(erin.payments)).toEqual([]);
  });

  it("refuse a stream of another user's updates, and one without a token", async () => {
    const updates = await client('gateway.v1.WebSocketService');
    const other = streamCall(
      updates,
      'StreamReservationUpdates',
      {user_id: 'alice'},
      authorized(await bearer('mallory')),
    );
    streams.push(other);
    expect((await other.ended).code).toBe(grpc.status.PERMISSION_DENIED);
    const anonymous = streamCall(updates, 'StreamPaymentUpdates', {});
    streams.push(anonymous);
    expect((await anonymous.ended).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('end with UNAVAILABLE when the gateway stops', async () => {
    const stopping = await gatewayOn(mocks[0], mocks[1]);
    const side = await openStreams('peggy', stopping);
    await stopping.close();
    for (const stream of [side.reservations, side.payments])
      expect((await stream.ended).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('reach a stream on a second gateway on the same Redis with what the first one made', async () => {
    const second = await gatewayOn(mocks[0], mocks[1]);
    const side = await openStreams('frank', second);
    const created = await hold(side, gateway);
    const held = await update(side.reservations, (shown) => shown.reservation_id === created.reservation_id);
    expect(held.new_status).toBe('RESERVATION_STATUS_HOLD');
  });
});

describe('bounds', () => {
  it('keep a reader that falls behind to its latest changes, the newest kept', async () => {
    // The gateway's own stream source, on the test's Redis: a gRPC or WebSocket reader that stops
    // reading holds its producer back (flow control), which is where this backlog builds up.
    const connection = new Redis(redis!.port, '127.0.0.1');
    const updates = new UserUpdates(connection, createLogger('test', 'silent'));
    const reader = updates
      .reservationUpdates('ivan', [], AbortSignal.timeout(WAIT_MS * 2), 'slow')
      [Symbol.asyncIterator]();
    const received: Message[] = [];
    try {
      const first = reader.next();
      await untilListening('ivan', 'slow');
      received.push((await first).value);
      const burst = 3000;
      for (let index = 0; index < burst; index++) {
        const event = reservationEvent(
          {id: `rsv_burst_${index}`, oldStatus: 'RESERVATION_STATUS_UNSPECIFIED', newStatus: 'RESERVATION_STATUS_HOLD'},
          Date.now(),
          '',
        );
        await publishUserEvent(connection, 'ivan', event);
      }
      // Taken once every update published before it was offered to the stream (one channel, in order).
      const marker = await sendMessage({target_user_id: 'ivan', target_session_id: 'slow', content: 'end of burst'});
      expect(marker.delivered).toBe(true);
      for (let read = 0; read <= DEFAULT_USER_UPDATES_OPTIONS.maxPendingPerStream; read++) {
        const next = await reader.next();
        received.push(next.value);
        if (next.value.correlation_id === marker.message_id) break;
      }
      const ids = received
        .filter((message) => message.type === 'EVENT_TYPE_RESERVATION_UPDATE')
        .map((message) => message.reservation_update.reservation_id);
      expect(received.at(-1)?.correlation_id).toBe(marker.message_id);
      expect(ids.length).toBeLessThan(DEFAULT_USER_UPDATES_OPTIONS.maxPendingPerStream);
      expect(ids.at(-1)).toBe(`rsv_burst_${burst - 1}`);
    } finally {
      await reader.return?.(undefined);
      updates.close();
      connection.disconnect();
    }
  });

  it('refuse a user more streams than the cap, with RESOURCE_EXHAUSTED', async () => {
    const auth = await bearer('judy');
    const updates = await client('gateway.v1.WebSocketService');
    const opened: Array<StreamReader<Message>> = [];
    for (let index = 0; index < DEFAULT_USER_UPDATES_OPTIONS.maxStreamsPerUser; index++) {
      const stream = streamCall<Message>(
        updates,
        'StreamPaymentUpdates',
        {session_id: `judy-${index}`},
        authorized(auth),
      );
      opened.push(stream);
      streams.push(stream);
      await untilListening('judy', `judy-${index}`);
    }
    const over = streamCall<Message>(updates, 'StreamPaymentUpdates', {}, authorized(auth));
    streams.push(over);
    expect((await over.ended).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const metrics = parseMetrics(await (await fetch(`${gateway.http}/metrics`)).text());
    const counted = metrics.find(
      (sample) => sample.name === 'gateway_refusals_total' && sample.labels.reason === 'streams_per_user',
    );
    expect(counted?.labels.door).toBe('grpc');
    expect(counted?.value).toBe(1);
  });
});

describe('SendMessage', () => {
  it('is delivered to a user with an open stream, and the stream shows it', async () => {
    const side = await openStreams('grace');
    const answer = await sendMessage({
      target_user_id: 'grace',
      message_type: 'MESSAGE_TYPE_INFO',
      title: 'Doors',
      content: 'Doors open at 7.',
      priority: 'MESSAGE_PRIORITY_HIGH',
    });
    expect(answer.delivered).toBe(true);
    expect(answer.message_id).toMatch(/^msg_/);
    expect(Number(answer.sent_at.seconds)).toBeGreaterThan(0);
    for (const stream of [side.reservations, side.payments]) {
      const shown = await stream.waitFor((message) => message.correlation_id === answer.message_id, WAIT_MS);
      expect(shown.type).toBe('EVENT_TYPE_MESSAGE');
      expect((shown.reservation_update ?? shown.payment_update).message).toBe('Doors: Doors open at 7.');
    }
  });

  it('is not delivered to a user without a stream, nor to a session no stream has', async () => {
    await openStreams('heidi');
    expect((await sendMessage({target_user_id: 'nobody-here', content: 'hi'})).delivered).toBe(false);
    expect(
      (await sendMessage({target_user_id: 'heidi', target_session_id: 'no-such-session', content: 'hi'})).delivered,
    ).toBe(false);
  });

  it('needs the messages:send scope and bounded fields', async () => {
    const refused = sendMessage({target_user_id: 'grace', content: 'hi'}, await bearer('grace'));
    await expect(refused).rejects.toMatchObject({code: grpc.status.PERMISSION_DENIED});
    await expect(sendMessage({target_user_id: 'grace', content: 'x'.repeat(2001)})).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    await expect(sendMessage({content: 'to whom?'})).rejects.toMatchObject({code: grpc.status.INVALID_ARGUMENT});
    await expect(sendMessage({target_user_id: 'grace'})).rejects.toMatchObject({code: grpc.status.INVALID_ARGUMENT});
  });
});

// Last: it restarts the Redis every other test uses.
describe('after a Redis restart', () => {
  it('an open stream hears updates again (its subscription is made again)', async () => {
    const side = await openStreams('kim');
    await redis!.stop();
    await redis!.restart();
    await waitForReady(gateway, WAIT_MS);
    for (let attempt = 0; ; attempt++) {
      const answer = await sendMessage({
        target_user_id: 'kim',
        target_session_id: `${side.session}-r`,
        content: 'back',
      }).catch(() => ({delivered: false}));
      if (answer.delivered) break;
      if (attempt >= LISTEN_ATTEMPTS) throw new Error('the stream never heard a message after the restart');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const created = await hold(side);
    await update(side.reservations, (shown) => shown.reservation_id === created.reservation_id);
  });
});
