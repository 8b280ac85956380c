/**
 * Deadlines and the circuit breaker, as a developer watches them with `tacos serve payment` and its
 * fault injection: the payment mock slowed to 2 s behind a 400 ms deadline makes the gateway answer
 * 504 in about 400 ms; after three such failures it answers 503 at once without calling the
 * backend; once the latency is gone and the cool-down has passed, calls go through again. Over both
 * roads to the backend (GRPC_ENABLED true and false) and through both doors of the gateway.
 */
import * as grpc from '@grpc/grpc-js';
import {setTimeout as sleep} from 'node:timers/promises';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {
  admit,
  backendEnv,
  bearer,
  callsSince,
  mockCalls,
  send,
  startStackGateway,
  startTestMock,
  type Answer,
} from '../helpers/stack.js';

const DEADLINE_MS = 400;
// Longer than the slow calls that open both roads (gRPC, then HTTP), so neither half-opens meanwhile.
const COOLDOWN_MS = 3000;
const FAILURES = 3;
/** A timed-out call answers after the deadline, and well before the mock's 2 s. */
const TIMEOUT_BOUNDS = {min: DEADLINE_MS - 50, max: 1500};
/** An open circuit answers without waiting for anything. */
const FAST_MS = 300;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment', {scenario: 'APPROVE'});
});

afterEach(() => {
  payment?.faults.update({latencyMs: 0, errorRate: 0});
  reservation?.faults.update({latencyMs: 0, errorRate: 0});
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

async function breakerGateway(grpcEnabled: boolean): Promise<TestGateway> {
  const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
    GRPC_ENABLED: String(grpcEnabled),
    GRPC_TRAFFIC_PERCENT: '100',
    BACKEND_PAYMENT_API_TIMEOUT: `${DEADLINE_MS}ms`,
    BACKEND_RESERVATION_API_TIMEOUT: `${DEADLINE_MS}ms`,
    BACKEND_BREAKER_FAILURES: String(FAILURES),
    BACKEND_BREAKER_COOLDOWN: `${COOLDOWN_MS}ms`,
  });
  gateways.push(gateway);
  return gateway;
}

/** Changes the payment mock's faults as a developer would: its admin route. */
async function setPaymentFaults(body: {latency?: string | number; error_rate?: number}): Promise<void> {
  const answer = await send(`http://127.0.0.1:${payment!.httpPort}`, 'PUT', '/admin/faults', {body});
  expect(answer.status, answer.text).toBe(200);
  if (body.latency !== undefined)
    expect(answer.json.latency_ms).toBe(typeof body.latency === 'number' ? body.latency : 2000);
  if (body.error_rate !== undefined) expect(answer.json.error_rate).toBe(body.error_rate);
}

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json?.error?.code, answer.text).toBe(code);
}

describe.each([
  {grpcEnabled: true, road: 'grpc' as const},
  {grpcEnabled: false, road: 'http' as const},
])('REST door, GRPC_ENABLED=$grpcEnabled (payment over $road)', ({grpcEnabled, road}) => {
  let gateway: TestGateway;
  let auth: string;
  let intentId: string;
  const paymentStatus = () => send(gateway.http, 'GET', `/api/v1/payment/${intentId}/status`, {auth});

  beforeAll(async () => {
    gateway = await breakerGateway(grpcEnabled);
    auth = await bearer('alice');
    const reservationId = await heldReservation(gateway, auth);
    const intent = await send(gateway.http, 'POST', '/api/v1/payment/intent', {
      auth,
      body: {reservation_id: reservationId},
    });
    expect(intent.status, intent.text).toBe(200);
    intentId = intent.json.payment_intent_id;
  });

  it(`a 2 s backend behind a ${DEADLINE_MS} ms deadline: 504 in about ${DEADLINE_MS} ms, then 503 at once (circuit open), then closed again after the cool-down`, async () => {
    const healthy = await paymentStatus();
    expect(healthy.status, healthy.text).toBe(200);

    await setPaymentFaults({latency: '2s'});
    const before = await mockCalls(payment!, 'GetPaymentStatus');
    // Over gRPC, its circuit opening sends the calls over HTTP, until that circuit opens too.
    const slowCalls = road === 'grpc' ? 2 * FAILURES : FAILURES;
    for (let call = 1; call <= slowCalls; call++) {
      const answer = await paymentStatus();
      expectError(answer, 504, 'UPSTREAM_TIMEOUT');
      expect(answer.ms, `call ${call}`).toBeGreaterThanOrEqual(TIMEOUT_BOUNDS.min);
      expect(answer.ms, `call ${call}`).toBeLessThan(TIMEOUT_BOUNDS.max);
    }
    const openedAt = Date.now();
    // The slow calls did reach the backend: over the configured road, then (gRPC) over the other.
    expect(callsSince(before, await mockCalls(payment!, 'GetPaymentStatus'))).toEqual({
      grpc: road === 'grpc' ? FAILURES : 0,
      http: FAILURES,
    });

    const reached = await mockCalls(payment!, 'GetPaymentStatus');
    for (let call = 1; call <= 2; call++) {
      const refused = await paymentStatus();
      expectError(refused, 503, 'UNAVAILABLE');
      expect(refused.ms, `refused call ${call}`).toBeLessThan(FAST_MS);
    }
    // Refused by the gateway itself: the backend never heard of these calls.
    expect(await mockCalls(payment!, 'GetPaymentStatus')).toEqual(reached);

    // The breaker is per backend: reservation still answers while payment's circuit is open.
    const availability = await send(gateway.http, 'GET', '/api/v1/events/evt_2026_concert/availability', {auth});
    expect(availability.status, availability.text).toBe(200);

    // The backend recovers, but the gateway keeps refusing until the cool-down has passed.
    await setPaymentFaults({latency: 0});
    if (Date.now() - openedAt < COOLDOWN_MS - 300) {
      const stillOpen = await paymentStatus();
      expectError(stillOpen, 503, 'UNAVAILABLE');
      expect(await mockCalls(payment!, 'GetPaymentStatus')).toEqual(reached);
    }

    await sleep(Math.max(0, openedAt + COOLDOWN_MS + 200 - Date.now()));
    const probe = await paymentStatus();
    expect(probe.status, probe.text).toBe(200);
    expect(probe.json.status).toBe('PENDING');
    const closed = await paymentStatus();
    expect(closed.status, closed.text).toBe(200);
    expect(callsSince(reached, await mockCalls(payment!, 'GetPaymentStatus'))[road]).toBe(2);
  });

  it('after the cool-down one probe goes through; when it fails too, the circuit opens again at once', async () => {
    await setPaymentFaults({latency: '2s'});
    for (let call = 1; call <= FAILURES; call++) expectError(await paymentStatus(), 504, 'UPSTREAM_TIMEOUT');
    const openedAt = Date.now();
    expectError(await paymentStatus(), 503, 'UNAVAILABLE');

    await sleep(Math.max(0, openedAt + COOLDOWN_MS + 200 - Date.now()));
    const reached = await mockCalls(payment!, 'GetPaymentStatus');
    const probe = await paymentStatus();
    expectError(probe, 504, 'UPSTREAM_TIMEOUT');
    const reopenedAt = Date.now();
    expect(callsSince(reached, await mockCalls(payment!, 'GetPaymentStatus'))[road]).toBe(1);
    // Not another three slow failures: one failed probe is enough to refuse again.
    const refused = await paymentStatus();
    expectError(refused, 503, 'UNAVAILABLE');
    expect(refused.ms).toBeLessThan(FAST_MS);

    await setPaymentFaults({latency: 0});
    await sleep(Math.max(0, reopenedAt + COOLDOWN_MS + 200 - Date.now()));
    const recovered = await paymentStatus();
    expect(recovered.status, recovered.text).toBe(200);
  });

  it('a backend that fails every call (error_rate 1) is answered 502 at first, then 503 without calling it', async () => {
    await setPaymentFaults({error_rate: 1});
    for (let call = 1; call <= FAILURES; call++) {
      const answer = await paymentStatus();
      expectError(answer, 502, 'UPSTREAM_ERROR');
    }
    const openedAt = Date.now();
    const reached = await mockCalls(payment!, 'GetPaymentStatus');
    expectError(await paymentStatus(), 503, 'UNAVAILABLE');
    expect(await mockCalls(payment!, 'GetPaymentStatus')).toEqual(reached);

    await setPaymentFaults({error_rate: 0});
    await sleep(Math.max(0, openedAt + COOLDOWN_MS + 200 - Date.now()));
    const recovered = await paymentStatus();
    expect(recovered.status, recovered.text).toBe(200);
  });

  it('a reservation that timed out may exist: its reservation token stays used up, and the answer says so', async () => {
    const token = await admit(gateway.http, 'evt_2026_concert', 'alice');
    const create = () =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: 'evt_2026_concert', quantity: 1, reservation_token: token},
      });
    reservation!.faults.update({latencyMs: 2000});
    const slow = await create();
    expectError(slow, 504, 'UPSTREAM_TIMEOUT');
    expect(slow.ms).toBeLessThan(TIMEOUT_BOUNDS.max);
    expect(slow.json.error.message).toMatch(/may have been made/);

    reservation!.faults.update({latencyMs: 0});
    expectError(await create(), 403, 'RESERVATION_TOKEN_INVALID');
  });

  it('a reservation the backend refused (a taken seat) keeps its reservation token usable', async () => {
    const token = await admit(gateway.http, 'evt_2026_concert', 'alice');
    const other = await admit(gateway.http, 'evt_2026_concert', 'alice');
    const create = (reservationToken: string, seat: string) =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: 'evt_2026_concert', seat_ids: [seat], reservation_token: reservationToken},
      });
    // One seat pair per road: both runs share the mock.
    const [taken, free] = road === 'grpc' ? ['S-E20', 'S-E19'] : ['S-E18', 'S-E17'];
    expect((await create(other, taken)).status).toBe(201);
    expectError(await create(token, taken), 409, 'INVENTORY_CONFLICT');
    const retried = await create(token, free);
    expect(retried.status, retried.text).toBe(201);
  });

  it('answers the backend gives on purpose (404 for an unknown payment) never open the circuit', async () => {
    for (let call = 1; call <= FAILURES + 2; call++) {
      const missing = await send(gateway.http, 'GET', `/api/v1/payment/pi_does_not_exist_${call}/status`, {auth});
      expectError(missing, 404, 'PAYMENT_NOT_FOUND');
    }
    const found = await paymentStatus();
    expect(found.status, found.text).toBe(200);
  });
});

describe('gRPC door: GatewayService answers DEADLINE_EXCEEDED, then UNAVAILABLE while the circuit is open', () => {
  let gateway: TestGateway;
  let service: Awaited<ReturnType<typeof contractClient>>;
  let metadata: () => grpc.Metadata;
  let intentId: string;

  beforeAll(async () => {
    gateway = await breakerGateway(true);
    const auth = await bearer('alice');
    metadata = () => {
      const value = new grpc.Metadata();
      value.set('authorization', auth);
      return value;
    };
    service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
    const intent = await unaryCall(
      service,
      'CreatePaymentIntent',
      {reservation_id: await heldReservation(gateway, auth)},
      metadata(),
    );
    intentId = intent.payment_intent_id;
  });

  afterAll(() => {
    service?.close();
  });

  /** The call's outcome: its status code and how long it took. */
  async function paymentStatus(): Promise<{code: grpc.status; ms: number; response?: Record<string, any>}> {
    const started = performance.now();
    try {
      const response = await unaryCall(service, 'GetPaymentStatus', {payment_intent_id: intentId}, metadata());
      return {code: grpc.status.OK, ms: performance.now() - started, response};
    } catch (error) {
      return {code: (error as grpc.ServiceError).code, ms: performance.now() - started};
    }
  }

  it('slow backend: DEADLINE_EXCEEDED in about the deadline, then UNAVAILABLE at once, then OK after the cool-down', async () => {
    expect((await paymentStatus()).code).toBe(grpc.status.OK);
    payment!.faults.update({latencyMs: 2000});
    // The gateway's backend calls go over gRPC, then over HTTP once gRPC's circuit is open.
    for (let call = 1; call <= 2 * FAILURES; call++) {
      const answer = await paymentStatus();
      expect(answer.code, `call ${call}`).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(answer.ms, `call ${call}`).toBeGreaterThanOrEqual(TIMEOUT_BOUNDS.min);
      expect(answer.ms, `call ${call}`).toBeLessThan(TIMEOUT_BOUNDS.max);
    }
    const openedAt = Date.now();
    const reached = await mockCalls(payment!, 'GetPaymentStatus');
    const refused = await paymentStatus();
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.ms).toBeLessThan(FAST_MS);
    expect(await mockCalls(payment!, 'GetPaymentStatus')).toEqual(reached);

    payment!.faults.update({latencyMs: 0});
    await sleep(Math.max(0, openedAt + COOLDOWN_MS + 200 - Date.now()));
    const recovered = await paymentStatus();
    expect(recovered.code).toBe(grpc.status.OK);
    expect(recovered.response?.payment?.payment_intent_id).toBe(intentId);
  });
});

/** A reservation on hold for `auth`'s user: payment intents are only made for one (its total is the amount). */
async function heldReservation(gateway: TestGateway, auth: string): Promise<string> {
  const user = JSON.parse(Buffer.from(auth.split('.')[1], 'base64url').toString()).sub as string;
  const token = await admit(gateway.http, 'evt_2026_concert', user);
  const created = await send(gateway.http, 'POST', '/api/v1/reservations', {
    auth,
    body: {event_id: 'evt_2026_concert', quantity: 1, reservation_token: token},
  });
  expect(created.status, created.text).toBe(201);
  return created.json.reservation_id;
}
