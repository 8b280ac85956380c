/**
 * The journey as the real web client (reservation-web) and its k6 script make it, against the
 * shapes the Go gateway answers (test/fixtures/contracts/REST.md 1.4-1.6, 2.2-2.5): a real gateway, real mock
 * backends with the shipped catalogue, a real redis-server.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {backendEnv, bearer, eventually, send, startStackGateway, startTestMock, type Answer} from '../helpers/stack.js';

/** The event the client queues for, and the one it always names when it reserves. */
const QUEUED_EVENT = 'evt_2025_1004';
const CLIENT_DEFAULT_EVENT = 'evt_2025_1001';
const PRICE = 120000;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let gateway: TestGateway | undefined;
let auth: string;
let nextSeat = 1;

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment', {scenario: 'RANDOM', delayMs: 300});
  // Info: the tests read the lines noting another event or amount than the body named.
  gateway = await startStackGateway(backendEnv(reservation, payment, redis.address), {
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '100',
    LOG_LEVEL: 'info',
  });
  auth = await bearer('web-user');
});

afterAll(async () => {
  await gateway?.close();
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

const api = (method: string, pathname: string, options: {body?: unknown; headers?: Record<string, string>} = {}) =>
  send(gateway!.http, method, pathname, {auth, ...options});

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json?.error?.code, answer.text).toBe(code);
}

/** Join as the client does (user_id "anonymous") and enter once the status says waiting + ready_for_entry. */
async function queueAndEnter(eventId = QUEUED_EVENT): Promise<string> {
  const joined = await api('POST', '/api/v1/queue/join', {
    body: {event_id: eventId, user_id: 'anonymous'},
    headers: {'idempotency-key': crypto.randomUUID()},
  });
  expect(joined.status, joined.text).toBe(202);
  const status = await api('GET', `/api/v1/queue/status?token=${encodeURIComponent(joined.json.waiting_token)}`);
  expect(status.json).toMatchObject({status: 'waiting', ready_for_entry: true});
  const entered = await api('POST', '/api/v1/queue/enter', {
    body: {waiting_token: joined.json.waiting_token},
    headers: {'idempotency-key': crypto.randomUUID()},
  });
  expect(entered.status, entered.text).toBe(200);
  return entered.json.reservation_token as string;
}

/** The seat page's reserve: always event evt_2025_1001, one seat of VIP row 3 (14 seats). */
async function reserveOneSeat(): Promise<Answer> {
  const seat = `VIP-3-${nextSeat++}`;
  return api('POST', '/api/v1/reservations', {
    body: {
      event_id: CLIENT_DEFAULT_EVENT,
      seat_ids: [seat],
      quantity: 1,
      reservation_token: await queueAndEnter(),
      user_id: `user_${Date.now()}`,
    },
    headers: {'idempotency-key': crypto.randomUUID()},
  });
}

/** The payment page's intent: plural path, fixed number amount, lower-case scenario. */
function payIntent(reservationId: string, scenario: string, path = '/api/v1/payments/intent'): Promise<Answer> {
  return api('POST', path, {
    body: {reservation_id: reservationId, amount: PRICE, scenario, currency: 'KRW'},
    headers: {'idempotency-key': crypto.randomUUID()},
  });
}

async function settledStatus(intentId: string, path = 'payments'): Promise<any> {
  return eventually(
    `payment ${intentId} settles`,
    async () => {
      const answer = await api('GET', `/api/v1/${path}/${intentId}/status`);
      expect(answer.status, answer.text).toBe(200);
      return ['COMPLETED', 'FAILED'].includes(answer.json.status) ? answer.json : undefined;
    },
    5000,
  );
}

describe('queue, as the web client and k6 use it', () => {
  it('status stays waiting with ready_for_entry (so the client enters by itself); after entry it says admitted', async () => {
    const joined = await api('POST', '/api/v1/queue/join', {body: {event_id: QUEUED_EVENT, user_id: 'anonymous'}});
    expect(joined.status).toBe(202);
    expect(joined.json).toMatchObject({
      waiting_token: expect.any(String),
      position_hint: expect.any(Number),
      status: 'waiting',
    });
    const token = joined.json.waiting_token as string;
    const status = await api('GET', `/api/v1/queue/status?token=${encodeURIComponent(token)}`);
    expect(status.json).toEqual(
      expect.objectContaining({
        status: 'waiting',
        position: 1,
        eta_sec: expect.any(Number),
        waiting_time: expect.any(Number),
        ready_for_entry: true,
      }),
    );
    const entered = await api('POST', '/api/v1/queue/enter', {body: {waiting_token: token}});
    expect(entered.json).toMatchObject({admission: 'granted', reservation_token: expect.any(String), ttl_sec: 30});
    const after = await api('GET', `/api/v1/queue/status?token=${encodeURIComponent(token)}`);
    expect(after.json).toMatchObject({status: 'admitted', ready_for_entry: false});
  });

  it("takes k6's non-UUID Idempotency-Keys on join and enter, and its raw tokens in the status query", async () => {
    const now = Date.now();
    const joined = await send(gateway!.http, 'POST', '/api/v1/queue/join', {
      body: {event_id: 'evt_loadtest_7', user_id: 'user_1_0'},
      headers: {
        'idempotency-key': `join_1_0_${now}`,
        authorization: 'Bearer dev-super-key-local-testing',
        'x-load-test': 'true',
        'user-agent': 'k6-load-test/1.0',
      },
    });
    expect(joined.status, joined.text).toBe(202);
    const token = joined.json.waiting_token as string;
    const status = await send(gateway!.http, 'GET', `/api/v1/queue/status?token=${token}`);
    expect(status.status, status.text).toBe(200);
    const entered = await send(gateway!.http, 'POST', '/api/v1/queue/enter', {
      body: {waiting_token: token},
      headers: {'idempotency-key': `enter_1_0_${now}`},
    });
    expect(entered.status, entered.text).toBe(200);
  });

  it('the tab-close beacon (text/plain, no custom headers) leaves the queue, by query or by body', async () => {
    const beacon = async (query: string, text: string) => {
      const response = await fetch(`${gateway!.http}/api/v1/queue/leave${query}`, {
        method: 'POST',
        headers: {'content-type': 'text/plain;charset=UTF-8'},
        body: text,
      });
      return {status: response.status, json: (await response.json()) as any};
    };
    for (const byQuery of [true, false]) {
      const joined = await api('POST', '/api/v1/queue/join', {body: {event_id: QUEUED_EVENT, user_id: 'anonymous'}});
      const token = joined.json.waiting_token as string;
      const left = await beacon(
        byQuery ? `?token=${encodeURIComponent(token)}` : '',
        JSON.stringify({waiting_token: token}),
      );
      expect(left).toEqual({status: 200, json: {status: 'left'}});
      expect((await api('GET', `/api/v1/queue/status?token=${encodeURIComponent(token)}`)).json.status).toBe('left');
    }
    // No token anywhere: a clear 400, nothing left.
    const without = await beacon('', 'not json');
    expect(without.status).toBe(400);
    expect(without.json.error.message).toContain('waiting_token');
    // text/plain is taken by the beacon only: enter still refuses it.
    const enter = await fetch(`${gateway!.http}/api/v1/queue/enter`, {
      method: 'POST',
      headers: {'content-type': 'text/plain'},
      body: '{"waiting_token":"x"}',
    });
    expect(enter.status).toBe(415);
  });
});

describe('reservations, as the web client makes them', () => {
  it("are made for the token's event with the Go gateway's fields and JSON types (+ hold_expires_at)", async () => {
    const created = await reserveOneSeat();
    expect(created.status, created.text).toBe(201);
    const body = created.json;
    expect(body).toMatchObject({
      reservation_id: expect.stringMatching(/^rsv_/),
      status: 'HOLD',
      // The token was issued for the queued event; the client's evt_2025_1001 is not used.
      event_id: QUEUED_EVENT,
      seat_ids: [expect.stringMatching(/^VIP-3-\d+$/)],
      quantity: 1,
      user_id: 'web-user',
      hold_expires_at: expect.any(String),
      total_amount: {amount: PRICE, currency: 'KRW'},
    });
    expect(Number.isNaN(Date.parse(body.hold_expires_at))).toBe(false);
    // The log says the reservation went to another event than the body named.
    expect(gateway!.logs).toContainEqual(
      expect.objectContaining({asked_event_id: CLIENT_DEFAULT_EVENT, event_id: QUEUED_EVENT}),
    );

    const shown = await api('GET', `/api/v1/reservations/${body.reservation_id}`);
    expect(shown.json).toMatchObject({
      reservation_id: body.reservation_id,
      event_id: QUEUED_EVENT,
      status: 'HOLD',
      quantity: 1,
    });

    const cancelled = await api('POST', `/api/v1/reservations/${body.reservation_id}/cancel`, {
      body: {
        reservation_id: body.reservation_id,
        user_id: 'current_user',
        reason: 'USER_REQUESTED',
        idempotency_key: String(Date.now()),
      },
    });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.json.status).toBe('CANCELLED');
  });

  it('an aisle seat or a seat past the row is refused naming it, and the reservation token stays usable', async () => {
    const token = await queueAndEnter();
    for (const seat of ['VIP-5-1', 'VIP-3-15']) {
      const refused = await api('POST', '/api/v1/reservations', {
        body: {event_id: CLIENT_DEFAULT_EVENT, seat_ids: [seat], quantity: 1, reservation_token: token},
      });
      expectError(refused, 400, 'INVALID_ARGUMENT');
      expect(refused.json.error.message).toContain(seat);
    }
    const made = await api('POST', '/api/v1/reservations', {
      body: {event_id: CLIENT_DEFAULT_EVENT, seat_ids: ['VIP-15-30'], quantity: 1, reservation_token: token},
    });
    expect(made.status, made.text).toBe(201);
    expect(made.json.seat_ids).toEqual(['VIP-15-30']);
  });
});

describe('payments, as the web client makes them', () => {
  it.each([
    {scenario: 'approve', outcome: 'COMPLETED'},
    {scenario: 'fail', outcome: 'FAILED'},
    {scenario: 'delay', outcome: 'COMPLETED'},
    {scenario: 'PAYMENT_SCENARIO_FAIL', outcome: 'FAILED'},
  ])(
    'scenario $scenario: the intent is 200 PENDING with a number amount, and the payment ends $outcome by itself',
    async ({scenario, outcome}) => {
      const created = await reserveOneSeat();
      const id = created.json.reservation_id as string;
      const intent = await payIntent(id, scenario);
      expect(intent.status, intent.text).toBe(200);
      expect(intent.json).toMatchObject({
        payment_intent_id: expect.any(String),
        status: 'PENDING',
        amount: PRICE,
        currency: 'KRW',
        reservation_id: id,
      });
      const settled = await settledStatus(intent.json.payment_intent_id);
      expect(settled).toMatchObject({
        payment_intent_id: intent.json.payment_intent_id,
        status: outcome,
        amount: PRICE,
        currency: 'KRW',
        reservation_id: id,
      });

      if (outcome === 'COMPLETED') {
        const confirmed = await api('POST', `/api/v1/reservations/${id}/confirm`, {
          body: {
            reservation_id: id,
            user_id: 'current_user',
            payment_intent_id: intent.json.payment_intent_id,
            idempotency_key: String(Date.now()),
          },
        });
        expect(confirmed.status, confirmed.text).toBe(200);
        expect(confirmed.json).toMatchObject({order_id: expect.any(String), status: 'CONFIRMED'});
      }
    },
  );

  it('the singular /payment paths answer the same shapes; the object amount form still works', async () => {
    const created = await reserveOneSeat();
    const id = created.json.reservation_id as string;
    const intent = await api('POST', '/api/v1/payment/intent', {
      body: {reservation_id: id, amount: {amount: String(PRICE), currency: 'KRW'}},
    });
    expect(intent.status, intent.text).toBe(200);
    expect(intent.json).toMatchObject({status: 'PENDING', amount: PRICE, currency: 'KRW', reservation_id: id});
    const processed = await api('POST', '/api/v1/payments/process', {
      body: {payment_intent_id: intent.json.payment_intent_id, action: 'approve'},
    });
    expect(processed.status, processed.text).toBe(200);
    expect(processed.json).toMatchObject({
      status: expect.stringMatching(/^(COMPLETED|FAILED)$/),
      action: 'approve',
      message: expect.any(String),
    });
    const shown = await api('GET', `/api/v1/payment/${intent.json.payment_intent_id}/status`);
    expect(shown.json).toMatchObject({
      status: processed.json.status,
      amount: PRICE,
      currency: 'KRW',
      reservation_id: id,
    });
  });

  it("charges the reservation's total whatever positive amount is sent; <= 0 or not a number is 400 INVALID_AMOUNT; an unknown scenario is 400 naming the known ones", async () => {
    const created = await reserveOneSeat();
    const id = created.json.reservation_id as string;
    for (const amount of [0, -5, 'abc', 1.5, {amount: '0', currency: 'KRW'}]) {
      expectError(
        await api('POST', '/api/v1/payments/intent', {body: {reservation_id: id, amount, currency: 'KRW'}}),
        400,
        'INVALID_AMOUNT',
      );
    }
    const unknownScenario = await api('POST', '/api/v1/payments/intent', {
      body: {reservation_id: id, amount: PRICE, currency: 'KRW', scenario: 'maybe'},
    });
    expectError(unknownScenario, 400, 'INVALID_ARGUMENT');
    expect(unknownScenario.json.error.message).toMatch(/^scenario must be one of approve, fail, delay.*"maybe"/);
    const odd = await api('POST', '/api/v1/payments/intent', {body: {reservation_id: id, amount: 99, currency: 'KRW'}});
    expect(odd.status, odd.text).toBe(200);
    expect(odd.json.amount).toBe(PRICE);
    // The log notes what was sent against what is charged.
    expect(gateway!.logs).toContainEqual(
      expect.objectContaining({asked_amount: 99, asked_currency: 'KRW', amount: PRICE, currency: 'KRW'}),
    );
  });

  it("answers the Go gateway's payment error codes: INVALID_ACTION, MISSING_RESERVATION_ID, MISSING_PAYMENT_INTENT_ID, PAYMENT_NOT_FOUND", async () => {
    expectError(
      await api('POST', '/api/v1/payments/process', {body: {payment_intent_id: 'pi_x', action: 'refund'}}),
      400,
      'INVALID_ACTION',
    );
    expectError(
      await api('POST', '/api/v1/payments/intent', {body: {amount: PRICE, currency: 'KRW'}}),
      400,
      'MISSING_RESERVATION_ID',
    );
    expectError(
      await api('POST', '/api/v1/payment/process', {body: {action: 'approve'}}),
      400,
      'MISSING_PAYMENT_INTENT_ID',
    );
    for (const path of ['payment', 'payments'])
      expectError(await api('GET', `/api/v1/${path}/pi_never_made/status`), 404, 'PAYMENT_NOT_FOUND');
    expectError(
      await api('POST', '/api/v1/payments/process', {body: {payment_intent_id: 'pi_never_made'}}),
      404,
      'PAYMENT_NOT_FOUND',
    );
  });
});
