/**
 * The whole journey through the gateway, as a ticket buyer makes it: join the queue, enter, hold
 * seats with the reservation token, pay, confirm. Real mock backends (gRPC and HTTP) and a real
 * redis-server, shared by the file; one gateway per GRPC_ENABLED setting, so the same journey is
 * proved over both roads to the backends, counted by the mocks' own /metrics.
 */
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {
  admit,
  backendEnv,
  bearer,
  callsSince,
  eventually,
  mockCalls,
  send,
  startStackGateway,
  startTestMock,
  type Answer,
} from '../helpers/stack.js';

const CONCERT = 'evt_2026_concert';
const MUSICAL = 'evt_2026_musical';
const SHORT_HOLD_MS = 800;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
/** A second reservation backend whose holds last SHORT_HOLD_MS. */
let shortReservation: RunningMock | undefined;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  shortReservation = await startTestMock('reservation', {holdMs: SHORT_HOLD_MS});
  payment = await startTestMock('payment', {scenario: 'APPROVE'});
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled([reservation?.close(), shortReservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

async function gatewayTo(reservationMock: RunningMock, env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startStackGateway(backendEnv(reservationMock, payment!, redis!.address), env);
  gateways.push(gateway);
  return gateway;
}

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json?.error?.code, answer.text).toBe(code);
  expect(answer.json.error.message).toEqual(expect.any(String));
}

describe.each([
  {grpcEnabled: 'true', road: 'grpc' as const, other: 'http' as const},
  {grpcEnabled: 'false', road: 'http' as const, other: 'grpc' as const},
])('the journey with GRPC_ENABLED=$grpcEnabled (backend calls over $road)', ({grpcEnabled, road, other}) => {
  let gateway: TestGateway;
  let shortGateway: TestGateway;
  let alice: string;
  let bob: string;
  const api = (method: string, pathname: string, options: {body?: unknown; auth?: string} = {}) =>
    send(gateway.http, method, pathname, {auth: alice, ...options});

  beforeAll(async () => {
    const env = {GRPC_ENABLED: grpcEnabled, GRPC_TRAFFIC_PERCENT: '100'};
    gateway = await gatewayTo(reservation!, env);
    shortGateway = await gatewayTo(shortReservation!, env);
    alice = await bearer('alice');
    bob = await bearer('bob');
  });

  afterAll(async () => {
    await Promise.allSettled([gateway?.close(), shortGateway?.close()]);
  });

  it(`join -> enter -> reserve -> pay (APPROVE) -> confirm -> CONFIRMED, every backend call over ${road}`, async () => {
    const reservationBefore = await mockCalls(reservation!);
    const paymentBefore = await mockCalls(payment!);
    const createsBefore = await mockCalls(reservation!, 'CreateReservation');

    const reservationToken = await admit(gateway.http, CONCERT, 'alice');
    const created = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 2, reservation_token: reservationToken},
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({status: 'HOLD', reservation_id: expect.stringMatching(/^rsv_/)});
    expect(created.json.reserved_seats).toHaveLength(2);
    // Held for the backend's 60 s, give or take the clocks.
    const holdMs = Date.parse(created.json.hold_expires_at) - Date.now();
    expect(holdMs).toBeGreaterThan(50_000);
    expect(holdMs).toBeLessThanOrEqual(61_000);
    const total = created.json.total_amount;
    expect(Number(total.amount)).toBeGreaterThan(0);
    expect(total.currency).toBe('KRW');
    const id = created.json.reservation_id as string;

    const intent = await api('POST', '/api/v1/payment/intent', {body: {reservation_id: id, amount: total}});
    expect(intent.status, intent.text).toBe(200);
    expect(intent.json.payment_intent_id).toEqual(expect.any(String));
    expect(intent.json.status).toBe('PENDING');
    const intentId = intent.json.payment_intent_id as string;

    const processed = await api('POST', '/api/v1/payment/process', {body: {payment_intent_id: intentId}});
    expect(processed.status, processed.text).toBe(200);
    expect(processed.json.status).toBe('COMPLETED');

    const paid = await api('GET', `/api/v1/payment/${intentId}/status`);
    expect(paid.status, paid.text).toBe(200);
    expect(paid.json).toMatchObject({payment_intent_id: intentId, reservation_id: id, status: 'COMPLETED'});

    const confirmed = await api('POST', `/api/v1/reservations/${id}/confirm`, {body: {payment_intent_id: intentId}});
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(confirmed.json.status).toBe('CONFIRMED');
    expect(confirmed.json.order_id).toEqual(expect.any(String));
    expect(confirmed.json.confirmed_seats.map((seat: any) => seat.id).sort()).toEqual(
      created.json.reserved_seats.map((seat: any) => seat.id).sort(),
    );

    const shown = await api('GET', `/api/v1/reservations/${id}`);
    expect(shown.status, shown.text).toBe(200);
    expect(shown.json).toMatchObject({reservation_id: id, status: 'CONFIRMED'});

    // At least reservation Create, Confirm, Get and payment CreateIntent, Process, GetStatus (twice:
    // by the test, and by confirm, which checks the payment first); all over one road, none over the other.
    const reservationCalls = callsSince(reservationBefore, await mockCalls(reservation!));
    const paymentCalls = callsSince(paymentBefore, await mockCalls(payment!));
    expect(reservationCalls[other]).toBe(0);
    expect(reservationCalls[road]).toBeGreaterThanOrEqual(3);
    expect(paymentCalls[other]).toBe(0);
    expect(paymentCalls[road]).toBeGreaterThanOrEqual(4);
    expect(callsSince(createsBefore, await mockCalls(reservation!, 'CreateReservation'))).toEqual({
      [road]: 1,
      [other]: 0,
    });
  });

  it('a declined payment (FAIL) cannot confirm: 412 PAYMENT_NOT_APPROVED, and the reservation stays on HOLD', async () => {
    const created = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: await admit(gateway.http, CONCERT, 'alice')},
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.reservation_id as string;

    const intent = await api('POST', '/api/v1/payment/intent', {
      body: {reservation_id: id, amount: created.json.total_amount, scenario: 'PAYMENT_SCENARIO_FAIL'},
    });
    expect(intent.status, intent.text).toBe(200);
    const intentId = intent.json.payment_intent_id as string;
    // A named scenario settles by itself (the web client never calls process): the decline shows in the status.
    const declined = await eventually(
      'the payment is declined',
      async () => {
        const status = await api('GET', `/api/v1/payment/${intentId}/status`);
        return status.json.status === 'FAILED' ? status.json : undefined;
      },
      5000,
    );
    expect(declined.result?.success ?? false).toBe(false);
    expectError(
      await api('POST', '/api/v1/payment/process', {body: {payment_intent_id: intentId}}),
      409,
      'FAILED_PRECONDITION',
    );

    const confirmCallsBefore = await mockCalls(reservation!, 'ConfirmReservation');
    const refused = await api('POST', `/api/v1/reservations/${id}/confirm`, {body: {payment_intent_id: intentId}});
    expectError(refused, 412, 'PAYMENT_NOT_APPROVED');
    // Refused by the gateway: the reservation backend was never asked to confirm.
    expect(callsSince(confirmCallsBefore, await mockCalls(reservation!, 'ConfirmReservation'))).toEqual({
      grpc: 0,
      http: 0,
    });

    const shown = await api('GET', `/api/v1/reservations/${id}`);
    expect(shown.status, shown.text).toBe(200);
    expect(shown.json.status).toBe('HOLD');

    // The buyer gives up: cancelling gives the seat back.
    const cancelled = await api('POST', `/api/v1/reservations/${id}/cancel`, {body: {}});
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.json.status).toBe('CANCELLED');
    expect((await api('GET', `/api/v1/reservations/${id}`)).json.status).toBe('CANCELLED');
  });

  it('a payment confirms only the reservation it paid for, in full, and only once', async () => {
    const reserve = async () => {
      const created = await api('POST', '/api/v1/reservations', {
        body: {event_id: CONCERT, quantity: 1, reservation_token: await admit(gateway.http, CONCERT, 'alice')},
      });
      expect(created.status, created.text).toBe(201);
      return created.json as {reservation_id: string; total_amount: {amount: number; currency: string}};
    };
    const pay = async (reservationId: string, amount: unknown) => {
      const intent = await api('POST', '/api/v1/payment/intent', {body: {reservation_id: reservationId, amount}});
      if (intent.status !== 200) return intent;
      const processed = await api('POST', '/api/v1/payment/process', {
        body: {payment_intent_id: intent.json.payment_intent_id},
      });
      expect(processed.json?.status, processed.text).toBe('COMPLETED');
      return intent;
    };
    const first = await reserve();
    const second = await reserve();
    const paidFirst = await pay(first.reservation_id, first.total_amount);
    expect(paidFirst.status, paidFirst.text).toBe(200);

    // The first reservation's payment does not buy the second.
    const crossed = await api('POST', `/api/v1/reservations/${second.reservation_id}/confirm`, {
      body: {payment_intent_id: paidFirst.json.payment_intent_id},
    });
    expectError(crossed, 412, 'PAYMENT_NOT_APPROVED');
    expect((await api('GET', `/api/v1/reservations/${second.reservation_id}`)).json.status).toBe('HOLD');

    // Someone else cannot use alice's payment, nor confirm her reservation.
    const stranger = await send(gateway.http, 'POST', `/api/v1/reservations/${first.reservation_id}/confirm`, {
      auth: bob,
      body: {payment_intent_id: paidFirst.json.payment_intent_id},
    });
    expect([403, 404], stranger.text).toContain(stranger.status);
    expect((await api('GET', `/api/v1/reservations/${first.reservation_id}`)).json.status).toBe('HOLD');

    const confirmed = await api('POST', `/api/v1/reservations/${first.reservation_id}/confirm`, {
      body: {payment_intent_id: paidFirst.json.payment_intent_id},
    });
    expect(confirmed.status, confirmed.text).toBe(200);
    const twice = await api('POST', `/api/v1/reservations/${first.reservation_id}/confirm`, {
      body: {payment_intent_id: paidFirst.json.payment_intent_id},
    });
    expectError(twice, 409, 'FAILED_PRECONDITION');

    // 1 KRW for a seat of 198,000 KRW: REST takes any amount above 0 (the web client always sends
    // its fixed 120000) but charges the reservation's total, and says so in the answer.
    const cheap = await pay(second.reservation_id, {amount: '1', currency: second.total_amount.currency});
    expect(cheap.status, cheap.text).toBe(200);
    expect(cheap.json.amount).toBe(Number(second.total_amount.amount));
    const charged = await api('GET', `/api/v1/payment/${cheap.json.payment_intent_id}/status`);
    expect(charged.json).toMatchObject({
      amount: Number(second.total_amount.amount),
      currency: second.total_amount.currency,
      status: 'COMPLETED',
    });
    await api('POST', `/api/v1/reservations/${second.reservation_id}/cancel`, {body: {}});
  });

  it("another buyer's reservation looks like a missing one (404, as the contract says) and cannot be cancelled by them", async () => {
    const created = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: await admit(gateway.http, CONCERT, 'alice')},
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.reservation_id as string;
    try {
      const cancelled = await send(gateway.http, 'POST', `/api/v1/reservations/${id}/cancel`, {auth: bob, body: {}});
      expect([403, 404], cancelled.text).toContain(cancelled.status);
      expect((await api('GET', `/api/v1/reservations/${id}`)).json.status).toBe('HOLD');

      // reservation.v1.GetReservationRequest.user_id: "Owner of the reservation; others get
      // ERROR_CODE_NOT_FOUND" -- so a stranger cannot even learn that the id exists.
      const missing = await send(gateway.http, 'GET', '/api/v1/reservations/rsv_no_such_reservation', {auth: bob});
      expectError(missing, 404, 'NOT_FOUND');
      const foreign = await send(gateway.http, 'GET', `/api/v1/reservations/${id}`, {auth: bob});
      expectError(foreign, 404, 'NOT_FOUND');
    } finally {
      await api('POST', `/api/v1/reservations/${id}/cancel`, {body: {}});
    }
  });

  it('the reservation token is single use, and a reservation without one is refused before the backend', async () => {
    const token = await admit(gateway.http, CONCERT, 'alice');
    const first = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: token},
    });
    expect(first.status, first.text).toBe(201);

    // A double click: the same fresh token sent four times at once (BOOKING_MAX_IN_FLIGHT_PER_USER, so none is
    // refused for the user's calls in flight) holds seats once.
    const clicked = await admit(gateway.http, CONCERT, 'alice');
    const clicks = await Promise.all(
      Array.from({length: 4}, () =>
        api('POST', '/api/v1/reservations', {body: {event_id: CONCERT, quantity: 1, reservation_token: clicked}}),
      ),
    );
    expect(clicks.map((click) => click.status).sort(), clicks.map((click) => click.text).join('\n')).toEqual([
      201, 403, 403, 403,
    ]);
    for (const click of clicks.filter((answer) => answer.status === 403))
      expect(click.json.error.code).toBe('RESERVATION_TOKEN_INVALID');

    const createsBefore = await mockCalls(reservation!, 'CreateReservation');
    const again = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: token},
    });
    expectError(again, 403, 'RESERVATION_TOKEN_INVALID');

    const without = await api('POST', '/api/v1/reservations', {body: {event_id: CONCERT, quantity: 1}});
    expectError(without, 400, 'INVALID_ARGUMENT');
    expect(without.json.error.field).toBe('reservation_token');

    const made = await api('POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: 'rt_made_up_by_the_client'},
    });
    expectError(made, 403, 'RESERVATION_TOKEN_INVALID');

    // None of the refused creates held a seat: the backend never saw them.
    expect(callsSince(createsBefore, await mockCalls(reservation!, 'CreateReservation'))).toEqual({grpc: 0, http: 0});

    // A token is bound to the event it was queued for: sent with another event_id (the web client
    // always sends its default event), the seats are held in the token's event, and the answer says so.
    // R-C3 is a seat of the concert only; each road takes its own.
    const seat = road === 'grpc' ? 'R-C3' : 'R-D3';
    const otherEvent = await api('POST', '/api/v1/reservations', {
      body: {
        event_id: MUSICAL,
        seat_ids: [seat],
        quantity: 1,
        reservation_token: await admit(gateway.http, CONCERT, 'alice'),
      },
    });
    expect(otherEvent.status, otherEvent.text).toBe(201);
    expect(otherEvent.json).toMatchObject({event_id: CONCERT, seat_ids: [seat], quantity: 1, status: 'HOLD'});
    expect((await api('GET', `/api/v1/reservations/${otherEvent.json.reservation_id}`)).json.event_id).toBe(CONCERT);

    // Without a bearer token, nothing at all.
    const anonymous = await send(gateway.http, 'POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: await admit(gateway.http, CONCERT, 'x')},
    });
    expectError(anonymous, 401, 'UNAUTHENTICATED');
  });

  it(`a hold left alone expires on time and its seats come back; confirming it then is 410 (${SHORT_HOLD_MS} ms holds)`, async () => {
    const available = async () => {
      const answer = await send(shortGateway.http, 'GET', `/api/v1/events/${CONCERT}/availability`, {auth: alice});
      expect(answer.status, answer.text).toBe(200);
      return Number(answer.json.total_available);
    };
    const before = await available();
    expect(before).toBeGreaterThan(2);

    const created = await send(shortGateway.http, 'POST', '/api/v1/reservations', {
      auth: alice,
      body: {event_id: CONCERT, quantity: 2, reservation_token: await admit(shortGateway.http, CONCERT, 'alice')},
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.reservation_id as string;
    const createdAt = Date.now();
    expect(Date.parse(created.json.hold_expires_at) - createdAt).toBeLessThanOrEqual(SHORT_HOLD_MS + 200);
    expect(await available()).toBe(before - 2);

    // Paid, but too late: the confirm comes after the hold ran out.
    const intent = await send(shortGateway.http, 'POST', '/api/v1/payment/intent', {
      auth: alice,
      body: {reservation_id: id, amount: created.json.total_amount},
    });
    expect(intent.status, intent.text).toBe(200);
    const processed = await send(shortGateway.http, 'POST', '/api/v1/payment/process', {
      auth: alice,
      body: {payment_intent_id: intent.json.payment_intent_id},
    });
    expect(processed.json?.status, processed.text).toBe('COMPLETED');

    // The seats come back by themselves (availability does not look at the reservation).
    await eventually(
      'the held seats to come back',
      async () => ((await available()) === before ? true : undefined),
      SHORT_HOLD_MS + 3000,
    );
    expect(Date.now() - createdAt).toBeGreaterThanOrEqual(SHORT_HOLD_MS - 100);

    const shown = await send(shortGateway.http, 'GET', `/api/v1/reservations/${id}`, {auth: alice});
    expect(shown.status, shown.text).toBe(200);
    expect(shown.json.status).toBe('EXPIRED');

    const late = await send(shortGateway.http, 'POST', `/api/v1/reservations/${id}/confirm`, {
      auth: alice,
      body: {payment_intent_id: intent.json.payment_intent_id},
    });
    expectError(late, 410, 'RESERVATION_EXPIRED');
    expect((await send(shortGateway.http, 'GET', `/api/v1/reservations/${id}`, {auth: alice})).json.status).toBe(
      'EXPIRED',
    );
  });

  it('two buyers race for the last seat (BOX-A1): exactly one 201, the other 409', async () => {
    const boxAvailable = async () => {
      const answer = await api('GET', `/api/v1/events/${MUSICAL}/availability?section=BOX`);
      expect(answer.status, answer.text).toBe(200);
      return Number(answer.json.total_available);
    };
    expect(await boxAvailable()).toBe(1);
    const [aliceToken, bobToken] = await Promise.all([
      admit(gateway.http, MUSICAL, 'alice'),
      admit(gateway.http, MUSICAL, 'bob'),
    ]);
    const race = (auth: string, token: string) =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: MUSICAL, seat_ids: ['BOX-A1'], quantity: 1, reservation_token: token},
      });
    const answers = await Promise.all([race(alice, aliceToken), race(bob, bobToken)]);
    const winners = answers.filter((answer) => answer.status === 201);
    try {
      expect(answers.map((answer) => answer.status).sort(), answers.map((answer) => answer.text).join('\n')).toEqual([
        201, 409,
      ]);
      const loser = answers.find((answer) => answer.status !== 201)!;
      expect(['INVENTORY_CONFLICT', 'INSUFFICIENT_INVENTORY', 'ALREADY_EXISTS', 'FAILED_PRECONDITION']).toContain(
        loser.json?.error?.code,
      );
      expect(winners[0].json.reserved_seats.map((seat: any) => seat.id)).toEqual(['BOX-A1']);
      expect(await boxAvailable()).toBe(0);
    } finally {
      // Give the seat back so the other GRPC_ENABLED run can race for it too.
      for (const winner of winners) {
        const owner = answers.indexOf(winner) === 0 ? alice : bob;
        await send(gateway.http, 'POST', `/api/v1/reservations/${winner.json.reservation_id}/cancel`, {
          auth: owner,
          body: {},
        });
      }
    }
    expect(await boxAvailable()).toBe(1);
  });

  // GRPC_ENABLED=false has no gRPC door to go through.
  if (grpcEnabled === 'true')
    it('the same journey through the gRPC door (GatewayService) with bearer metadata', async () => {
      const queue = await contractClient('gateway.v1.QueueService', gateway.grpc);
      const service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
      try {
        const withAuth = () => {
          const metadata = new grpc.Metadata();
          metadata.set('authorization', alice);
          return metadata;
        };
        const joined = await unaryCall(queue, 'JoinQueue', {event_id: CONCERT, user_id: 'alice'});
        const admission = await unaryCall(queue, 'RequestAdmission', {waiting_token: joined.waiting_token});
        expect(admission.admission).toBe('ADMISSION_STATUS_GRANTED');
        const token = admission.reservation_token as string;

        // Without the bearer token the call is refused, and the token is not used up by it.
        await expect(
          unaryCall(service, 'CreateReservation', {event_id: CONCERT, quantity: 1, reservation_token: token}),
        ).rejects.toMatchObject({
          code: grpc.status.UNAUTHENTICATED,
        });

        const created = await unaryCall(
          service,
          'CreateReservation',
          {event_id: CONCERT, quantity: 1, reservation_token: token},
          withAuth(),
        );
        expect(created.status).toBe('RESERVATION_STATUS_HOLD');
        const id = created.reservation_id as string;
        await expect(
          unaryCall(
            service,
            'CreateReservation',
            {event_id: CONCERT, quantity: 1, reservation_token: token},
            withAuth(),
          ),
        ).rejects.toMatchObject({
          code: grpc.status.PERMISSION_DENIED,
        });

        const intent = await unaryCall(
          service,
          'CreatePaymentIntent',
          {reservation_id: id, amount: created.total_amount},
          withAuth(),
        );
        expect(intent.status).toBe('PAYMENT_STATUS_PENDING');
        // Before payment, confirm is refused: FAILED_PRECONDITION (PAYMENT_NOT_APPROVED).
        await expect(
          unaryCall(
            service,
            'ConfirmReservation',
            {reservation_id: id, payment_intent_id: intent.payment_intent_id},
            withAuth(),
          ),
        ).rejects.toMatchObject({
          code: grpc.status.FAILED_PRECONDITION,
        });
        // GatewayService has no ProcessPayment: the REST route does it, as the web client would.
        const processed = await api('POST', '/api/v1/payment/process', {
          body: {payment_intent_id: intent.payment_intent_id},
        });
        expect(processed.json?.status, processed.text).toBe('COMPLETED');
        const status = await unaryCall(
          service,
          'GetPaymentStatus',
          {payment_intent_id: intent.payment_intent_id},
          withAuth(),
        );
        expect(status.payment.status).toBe('PAYMENT_STATUS_COMPLETED');

        const confirmed = await unaryCall(
          service,
          'ConfirmReservation',
          {reservation_id: id, payment_intent_id: intent.payment_intent_id},
          withAuth(),
        );
        expect(confirmed.status).toBe('RESERVATION_STATUS_CONFIRMED');
        const shown = await unaryCall(service, 'GetReservation', {reservation_id: id}, withAuth());
        expect(shown.reservation).toMatchObject({reservation_id: id, status: 'RESERVATION_STATUS_CONFIRMED'});

        // Another user does not see alice's reservation.
        const bobMetadata = new grpc.Metadata();
        bobMetadata.set('authorization', bob);
        const hidden = await unaryCall(service, 'GetReservation', {reservation_id: id}, bobMetadata).catch(
          (error: grpc.ServiceError) => error,
        );
        expect([grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED]).toContain((hidden as grpc.ServiceError).code);
      } finally {
        queue.close();
        service.close();
      }
    });
});
