/**
 * The mock backends as a client sees them: startMock on 127.0.0.1 with free ports, called over both
 * doors (gRPC with the contract clients, HTTP/JSON with fetch), health, reflection, /metrics, and
 * fault injection set at start and changed at run time through /admin/faults.
 */
import {createServer} from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {startMock} from '../../src/services/mocks/serve.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {healthStatus, listServices} from '../helpers/grpc-probes.js';
import {fetchJson} from '../helpers/http.js';
import {parseMetrics} from '../helpers/metrics.js';

type AnyClient = grpc.Client & Record<string, any>;
type Json = Record<string, any>;

const RESERVATION = 'reservation.v1.ReservationService';
const INVENTORY = 'reservation.v1.InventoryService';
const PAYMENT = 'payment.v1.PaymentService';
const CONCERT = 'evt_2026_concert';
// Keeps the mocks' request logs off the test output; warnings and errors still show.
const QUIET = {LOG_LEVEL: 'warn'};
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const mocks: RunningMock[] = [];
const clients: AnyClient[] = [];

async function mock(name: 'reservation' | 'payment', options: {latencyMs?: number; errorRate?: number} = {}) {
  const running = await startMock(name, {httpPort: 0, grpcPort: 0, ...options}, QUIET);
  mocks.push(running);
  return {running, http: `http://127.0.0.1:${running.httpPort}`, grpc: `127.0.0.1:${running.grpcPort}`};
}

async function client(service: string, address: string): Promise<AnyClient> {
  const created = await contractClient(service, address);
  clients.push(created);
  return created;
}

async function request(method: string, url: string, body?: unknown, raw?: string) {
  const answer = await fetchJson(url, {
    method,
    body,
    raw,
    headers: raw === undefined ? {} : {'content-type': 'application/json'},
  });
  return {
    status: answer.status,
    headers: answer.headers,
    body: (answer.json === undefined ? {unparsed: answer.text} : answer.json) as Json,
  };
}

/** A gRPC call that never rejects: the answer or the error. */
async function outcome(promise: Promise<Json>): Promise<{response?: Json; error?: grpc.ServiceError}> {
  try {
    return {response: await promise};
  } catch (error) {
    return {error: error as grpc.ServiceError};
  }
}

function expectEnvelope(body: Json, code: string): void {
  expect(body, JSON.stringify(body)).toMatchObject({
    error: {code, message: expect.any(String), trace_id: expect.any(String)},
  });
  expect(body.error.message.length).toBeGreaterThan(0);
}

const msOfTimestamp = (stamp: {seconds: string; nanos: number}) =>
  Number(stamp.seconds) * 1000 + Math.round(stamp.nanos / 1e6);

/** mock_calls_total of one method, by protocol. */
async function callCounts(http: string, service: string, method: string): Promise<{http: number; grpc: number}> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const samples = parseMetrics(text).filter(
    (s) => s.name === 'mock_calls_total' && s.labels.service === service && s.labels.method === method,
  );
  const of = (protocol: string) => samples.find((s) => s.labels.protocol === protocol)?.value ?? 0;
  return {http: of('http'), grpc: of('grpc')};
}

async function grpcHandled(http: string, service: string, method: string, code: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return (
    parseMetrics(text).find(
      (s) =>
        s.name === 'grpc_server_handled_total' &&
        s.labels.grpc_service === service &&
        s.labels.grpc_method === method &&
        s.labels.grpc_code === code,
    )?.value ?? 0
  );
}

/** Can this process bind 127.0.0.1:port right now? */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

let reservation: Awaited<ReturnType<typeof mock>>;
let payment: Awaited<ReturnType<typeof mock>>;
let rsv: AnyClient;
let pay: AnyClient;

beforeAll(async () => {
  [reservation, payment] = await Promise.all([mock('reservation'), mock('payment')]);
  rsv = await client(RESERVATION, reservation.grpc);
  pay = await client(PAYMENT, payment.grpc);
});

afterAll(async () => {
  for (const opened of clients) opened.close();
  await Promise.allSettled(mocks.map((running) => running.close()));
  await Promise.allSettled(mocks.map((running) => running.close()));
});

describe('one operation, two doors', () => {
  it('a reservation created over REST reads the same over gRPC, and the generic POST /<Service>/<Method> route agrees', async () => {
    const created = await request('POST', `${reservation.http}/api/v1/reservations`, {
      event_id: CONCERT,
      quantity: 2,
      user_id: 'u-rest',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const id = created.body.reservation_id as string;
    expect(id).toMatch(/^rsv_/);

    const {reservation: overGrpc} = await unaryCall(rsv, 'GetReservation', {reservation_id: id, user_id: 'u-rest'});
    expect(overGrpc).toMatchObject({
      reservation_id: id,
      event_id: CONCERT,
      user_id: 'u-rest',
      status: 'RESERVATION_STATUS_HOLD',
      quantity: 2,
    });
    expect(overGrpc.seats.map((seat: Json) => seat.id)).toEqual(
      created.body.reserved_seats.map((seat: Json) => seat.id),
    );
    expect(overGrpc.total_amount).toEqual(created.body.total_amount);
    expect(msOfTimestamp(overGrpc.hold_expires_at)).toBe(Date.parse(created.body.hold_expires_at));

    const overRest = await request('GET', `${reservation.http}/api/v1/reservations/${id}?user_id=u-rest`);
    expect(overRest.status).toBe(200);
    const generic = await request('POST', `${reservation.http}/${RESERVATION}/GetReservation`, {
      reservation_id: id,
      user_id: 'u-rest',
    });
    expect(generic.status).toBe(200);
    expect(generic.body).toEqual(overRest.body);
    expect(overRest.body.reservation).toMatchObject({
      reservation_id: id,
      status: 'RESERVATION_STATUS_HOLD',
      quantity: 2,
      total_amount: overGrpc.total_amount,
    });
    expect(Date.parse(overRest.body.reservation.hold_expires_at)).toBe(msOfTimestamp(overGrpc.hold_expires_at));
  });

  it('a reservation created over gRPC reads the same over REST', async () => {
    const created = await unaryCall(rsv, 'CreateReservation', {event_id: CONCERT, quantity: 1, user_id: 'u-grpc'});
    expect(created.status).toBe('RESERVATION_STATUS_HOLD');
    const overRest = await request(
      'GET',
      `${reservation.http}/api/v1/reservations/${created.reservation_id}?user_id=u-grpc`,
    );
    expect(overRest.status, JSON.stringify(overRest.body)).toBe(200);
    const found = overRest.body.reservation;
    expect(found).toMatchObject({
      reservation_id: created.reservation_id,
      event_id: CONCERT,
      user_id: 'u-grpc',
      status: 'RESERVATION_STATUS_HOLD',
      quantity: 1,
    });
    expect(found.seats.map((seat: Json) => seat.id)).toEqual(created.reserved_seats.map((seat: Json) => seat.id));
    expect(found.total_amount).toEqual(created.total_amount);
    expect(Date.parse(found.hold_expires_at)).toBe(msOfTimestamp(created.hold_expires_at));
  });

  it('payment: an intent created over gRPC is processed over REST, and GET shows it COMPLETED', async () => {
    const intent = await unaryCall(pay, 'CreatePaymentIntent', {
      reservation_id: 'rsv_doors',
      amount: {amount: '150000', currency: 'KRW'},
      user_id: 'u-pay',
      method: 'PAYMENT_METHOD_CREDIT_CARD',
    });
    expect(intent.status).toBe('PAYMENT_STATUS_PENDING');
    const processed = await request('POST', `${payment.http}/api/v1/payments/process`, {
      payment_intent_id: intent.payment_intent_id,
    });
    expect(processed.status, JSON.stringify(processed.body)).toBe(200);
    expect(processed.body.status).toBe('PAYMENT_STATUS_COMPLETED');

    const shown = await request('GET', `${payment.http}/api/v1/payments/${intent.payment_intent_id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.payment).toMatchObject({
      payment_intent_id: intent.payment_intent_id,
      reservation_id: 'rsv_doors',
      status: 'PAYMENT_STATUS_COMPLETED',
      amount: {amount: '150000', currency: 'KRW'},
    });
    // ...and the gRPC door agrees.
    const overGrpc = await unaryCall(pay, 'GetPaymentStatus', {payment_intent_id: intent.payment_intent_id});
    expect(overGrpc.payment.status).toBe('PAYMENT_STATUS_COMPLETED');
    expect(overGrpc.payment.payment_id).toBe(shown.body.payment.payment_id);
  });
});

describe('HTTP/JSON is proto3 JSON', () => {
  it('answers with .proto field names, int64 as strings, enums as names and RFC 3339 Timestamps', async () => {
    const created = await request('POST', `${reservation.http}/api/v1/reservations`, {
      event_id: CONCERT,
      quantity: 1,
      user_id: 'u-json',
    });
    expect(created.status).toBe(200);
    const body = created.body;
    expect(Object.keys(body)).toEqual(
      expect.arrayContaining([
        'reservation_id',
        'status',
        'hold_expires_at',
        'reserved_seats',
        'total_amount',
        'payment_url',
      ]),
    );
    expect(JSON.stringify(body)).not.toMatch(/"[a-z]+[A-Z]\w*":/); // no lowerCamelCase keys anywhere
    expect(body.status).toBe('RESERVATION_STATUS_HOLD');
    expect(body.reserved_seats[0].status).toBe('SEAT_STATUS_RESERVED');
    expect(typeof body.total_amount.amount).toBe('string');
    expect(body.total_amount.amount).toMatch(/^\d+$/);
    expect(body.hold_expires_at).toMatch(RFC3339);
    expect(Date.parse(body.hold_expires_at)).toBeGreaterThan(Date.now());
  });

  it('reads requests as proto3 JSON too: lowerCamelCase names and enum names are accepted', async () => {
    const camel = await request('POST', `${reservation.http}/api/v1/reservations`, {
      eventId: CONCERT,
      quantity: 1,
      userId: 'u-camel',
    });
    expect(camel.status, JSON.stringify(camel.body)).toBe(200);
    const listed = await request('POST', `${reservation.http}/${RESERVATION}/ListReservations`, {
      user_id: 'u-camel',
      status: 'RESERVATION_STATUS_HOLD',
    });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.reservations.map((r: Json) => r.reservation_id)).toEqual([camel.body.reservation_id]);
  });

  it('refuses bad JSON, wrong field types and unknown fields with a 400 INVALID_ARGUMENT envelope', async () => {
    const url = `${reservation.http}/api/v1/reservations`;
    const notJson = await request('POST', url, undefined, '{"event_id": ');
    expect(notJson.status).toBe(400);
    expectEnvelope(notJson.body, 'INVALID_ARGUMENT');

    const wrongType = await request('POST', url, {event_id: CONCERT, quantity: 'two'});
    expect(wrongType.status).toBe(400);
    expectEnvelope(wrongType.body, 'INVALID_ARGUMENT');
    expect(wrongType.body.error.field).toBe('quantity');

    const wrongEnum = await request('POST', `${reservation.http}/${RESERVATION}/ListReservations`, {
      status: 'RESERVATION_STATUS_NOPE',
    });
    expect(wrongEnum.status).toBe(400);
    expectEnvelope(wrongEnum.body, 'INVALID_ARGUMENT');

    const unknown = await request('POST', url, {event_id: CONCERT, quantity: 1, seats_wanted: 3});
    expect(unknown.status).toBe(400);
    expectEnvelope(unknown.body, 'INVALID_ARGUMENT');

    const badMoney = await request('POST', `${payment.http}/api/v1/payments/intents`, {
      reservation_id: 'rsv_x',
      amount: {amount: 'lots', currency: 'KRW'},
    });
    expect(badMoney.status).toBe(400);
    expectEnvelope(badMoney.body, 'INVALID_ARGUMENT');
  });

  it('answers an unknown id with 404 and the envelope over HTTP, NOT_FOUND over gRPC', async () => {
    const rest = await request('GET', `${reservation.http}/api/v1/reservations/rsv_does_not_exist`);
    expect(rest.status).toBe(404);
    expectEnvelope(rest.body, 'NOT_FOUND');
    expect(rest.headers.get('x-request-id')).toBe(rest.body.error.trace_id);

    const generic = await request('POST', `${reservation.http}/${RESERVATION}/GetReservation`, {
      reservation_id: 'rsv_does_not_exist',
    });
    expect(generic.status).toBe(404);
    expectEnvelope(generic.body, 'NOT_FOUND');

    const paymentRest = await request('GET', `${payment.http}/api/v1/payments/pi_does_not_exist`);
    expect(paymentRest.status).toBe(404);
    expectEnvelope(paymentRest.body, 'NOT_FOUND');

    const {error} = await outcome(unaryCall(rsv, 'GetReservation', {reservation_id: 'rsv_does_not_exist'}));
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    const {error: paymentError} = await outcome(
      unaryCall(pay, 'GetPaymentStatus', {payment_intent_id: 'pi_does_not_exist'}),
    );
    expect(paymentError?.code).toBe(grpc.status.NOT_FOUND);
  });
});

describe('health and reflection', () => {
  it('reservation: SERVING, and reflection v1 and v1alpha list both services and grpc.health.v1.Health', async () => {
    expect(await healthStatus(reservation.grpc)).toBe('SERVING');
    expect(await healthStatus(reservation.grpc, RESERVATION)).toBe('SERVING');
    expect(await healthStatus(reservation.grpc, INVENTORY)).toBe('SERVING');
    for (const version of ['v1', 'v1alpha'] as const) {
      const services = await listServices(reservation.grpc, version);
      expect(services, version).toEqual(expect.arrayContaining([RESERVATION, INVENTORY, 'grpc.health.v1.Health']));
      expect(services, version).not.toContain(PAYMENT);
    }
    const healthz = await request('GET', `${reservation.http}/healthz`);
    expect(healthz.status).toBe(200);
  });

  it('payment: SERVING, and reflection v1 lists payment.v1.PaymentService and grpc.health.v1.Health', async () => {
    expect(await healthStatus(payment.grpc)).toBe('SERVING');
    expect(await healthStatus(payment.grpc, PAYMENT)).toBe('SERVING');
    const services = await listServices(payment.grpc, 'v1');
    expect(services).toEqual(expect.arrayContaining([PAYMENT, 'grpc.health.v1.Health']));
    expect(services).not.toContain(RESERVATION);
    expect((await request('GET', `${payment.http}/readyz`)).status).toBe(200);
  });
});

describe('/metrics', () => {
  it('counts calls per protocol and method: 3 over HTTP and 2 over gRPC show as exactly +3 and +2', async () => {
    const event = 'evt_2026_musical';
    const before = await callCounts(reservation.http, INVENTORY, 'GetInventoryStatus');
    const otherBefore = await callCounts(reservation.http, INVENTORY, 'CheckAvailability');
    const handledBefore = await grpcHandled(reservation.http, INVENTORY, 'GetInventoryStatus', 'OK');

    for (let i = 0; i < 2; i++)
      expect((await request('GET', `${reservation.http}/api/v1/events/${event}/inventory`)).status).toBe(200);
    expect(
      (await request('POST', `${reservation.http}/${INVENTORY}/GetInventoryStatus`, {event_id: event})).status,
    ).toBe(200);
    const inventory = await client(INVENTORY, reservation.grpc);
    for (let i = 0; i < 2; i++) await unaryCall(inventory, 'GetInventoryStatus', {event_id: event});

    const after = await callCounts(reservation.http, INVENTORY, 'GetInventoryStatus');
    expect({http: after.http - before.http, grpc: after.grpc - before.grpc}).toEqual({http: 3, grpc: 2});
    expect(await callCounts(reservation.http, INVENTORY, 'CheckAvailability')).toEqual(otherBefore);
    expect((await grpcHandled(reservation.http, INVENTORY, 'GetInventoryStatus', 'OK')) - handledBefore).toBe(2);
  });
});

describe('fault injection', () => {
  let faulty: Awaited<ReturnType<typeof mock>>;
  let inventory: AnyClient;
  const inventoryUrl = () => `${faulty.http}/api/v1/events/${CONCERT}/inventory`;

  beforeAll(async () => {
    faulty = await mock('reservation', {latencyMs: 200});
    inventory = await client(INVENTORY, faulty.grpc);
  });

  async function timed<T>(operation: () => Promise<T>): Promise<{ms: number; value: T}> {
    const started = performance.now();
    const value = await operation();
    return {ms: performance.now() - started, value};
  }

  const faults = async () => (await request('GET', `${faulty.http}/admin/faults`)).body;
  const putFaults = (body: unknown) => request('PUT', `${faulty.http}/admin/faults`, body);
  /** GET /admin/faults when both doors have the same settings. */
  const sameOnBoth = (latency_ms: number, error_rate: number) => ({
    latency_ms,
    error_rate,
    doors: {grpc: {latency_ms, error_rate}, http: {latency_ms, error_rate}},
  });

  it('adds the start-up latency to every call on both doors', async () => {
    expect(await faults()).toEqual(sameOnBoth(200, 0));
    const rest = await timed(() => request('GET', inventoryUrl()));
    expect(rest.value.status).toBe(200);
    const overGrpc = await timed(() => unaryCall(inventory, 'GetInventoryStatus', {event_id: CONCERT}));
    // 1 ms of slack for the timer's millisecond granularity.
    expect(rest.ms).toBeGreaterThanOrEqual(199);
    expect(overGrpc.ms).toBeGreaterThanOrEqual(199);
    // /healthz is not a call of the mock's services: no latency.
    expect((await timed(() => request('GET', `${faulty.http}/healthz`))).ms).toBeLessThan(150);
  });

  it('PUT /admin/faults {latency: 0, error_rate: 1}: every call fails on both doors, fast, and GET shows the new values', async () => {
    const changed = await putFaults({latency: 0, error_rate: 1});
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toEqual(sameOnBoth(0, 1));
    expect(await faults()).toEqual(sameOnBoth(0, 1));
    expect(faulty.running.faults.current).toEqual({
      grpc: {latencyMs: 0, errorRate: 1},
      http: {latencyMs: 0, errorRate: 1},
    });

    for (let i = 0; i < 5; i++) {
      const failed = await timed(() => request('GET', inventoryUrl()));
      expect(failed.value.status).toBe(503);
      expectEnvelope(failed.value.body, 'UNAVAILABLE');
      expect(failed.ms).toBeLessThan(150);
      const generic = await request('POST', `${faulty.http}/${RESERVATION}/ListReservations`, {});
      expect(generic.status).toBe(503);
      expectEnvelope(generic.body, 'UNAVAILABLE');
    }
    for (let i = 0; i < 3; i++) {
      const {error} = await outcome(unaryCall(inventory, 'GetInventoryStatus', {event_id: CONCERT}));
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  it('error_rate 0: calls succeed again', async () => {
    const changed = await putFaults({error_rate: 0});
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual(sameOnBoth(0, 0));
    for (let i = 0; i < 3; i++) expect((await request('GET', inventoryUrl())).status).toBe(200);
    const answer = await unaryCall(inventory, 'GetInventoryStatus', {event_id: CONCERT});
    expect(answer.event.id).toBe(CONCERT);
  });

  it('refuses invalid settings with a 400 envelope that names the setting, and keeps the settings as they were', async () => {
    await putFaults({latency: '30ms', error_rate: 0.25});
    const settled = sameOnBoth(30, 0.25);
    expect(await faults()).toEqual(settled);
    const cases: Array<[unknown, RegExp]> = [
      [{error_rate: 2}, /error.?rate/i],
      [{error_rate: 'often'}, /error.?rate/i],
      [{latency: 'soon'}, /latency/i],
      [{latency: -5}, /latency/i],
      // All or nothing: the valid latency is not applied when the rate is refused.
      [{latency: '1s', error_rate: 2}, /error.?rate/i],
    ];
    for (const [body, names] of cases) {
      const refused = await putFaults(body);
      expect.soft(refused.status, `PUT ${JSON.stringify(body)} -> ${JSON.stringify(refused.body)}`).toBe(400);
      expect.soft(refused.body.error?.code, `PUT ${JSON.stringify(body)}`).toMatch(/^(INVALID_ARGUMENT|USAGE)$/);
      expect.soft(refused.body.error?.message, `PUT ${JSON.stringify(body)}`).toMatch(names);
      expect(await faults(), `after PUT ${JSON.stringify(body)}`).toEqual(settled);
    }
  });
});

describe('close()', () => {
  it('is safe twice (also at once) and releases both ports', async () => {
    const running = await startMock('payment', {httpPort: 0, grpcPort: 0}, QUIET);
    mocks.push(running);
    const {httpPort, grpcPort} = running;
    const http = `http://127.0.0.1:${httpPort}`;
    expect((await request('GET', `${http}/healthz`)).status).toBe(200);
    expect(await portIsFree(httpPort)).toBe(false);
    expect(await portIsFree(grpcPort)).toBe(false);

    await expect(Promise.all([running.close(), running.close()])).resolves.toEqual([undefined, undefined]);
    await expect(running.close()).resolves.toBeUndefined();
    await expect(fetch(`${http}/healthz`)).rejects.toThrow();
    expect(await portIsFree(httpPort)).toBe(true);
    expect(await portIsFree(grpcPort)).toBe(true);
  });
});

describe('close() with injected latency', () => {
  it('latency 20s and calls in flight on both doors: close() resolves in under 2 s, the calls fail UNAVAILABLE', async () => {
    const slow = await mock('reservation', {latencyMs: 20_000});
    const inventory = await client(INVENTORY, slow.grpc);
    const overHttp = request('GET', `${slow.http}/api/v1/events/${CONCERT}/inventory`).catch((error: unknown) => ({
      status: 0,
      error,
    }));
    const overGrpc = outcome(unaryCall(inventory, 'GetInventoryStatus', {event_id: CONCERT}));
    // Both calls are sleeping on the latency once the mock has counted them.
    const counted = async () => {
      const {http, grpc: overGrpcCount} = await callCounts(slow.http, INVENTORY, 'GetInventoryStatus');
      return http + overGrpcCount;
    };
    for (let i = 0; i < 100 && (await counted()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await callCounts(slow.http, INVENTORY, 'GetInventoryStatus')).toEqual({http: 1, grpc: 1});

    const started = performance.now();
    await slow.running.close();
    expect(performance.now() - started).toBeLessThan(2000);

    const rest = await overHttp;
    expect(rest.status, JSON.stringify(rest)).toBe(503);
    expectEnvelope((rest as {body: Json}).body, 'UNAVAILABLE');
    const {error} = await overGrpc;
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('links, bind address and settings from the environment', () => {
  it('payment_url of both mocks is the REST route of the resource on the port actually bound (a GET there answers 200)', async () => {
    const created = await request('POST', `${reservation.http}/api/v1/reservations`, {
      event_id: CONCERT,
      quantity: 1,
      user_id: 'links',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body.payment_url).toBe(`${reservation.http}/api/v1/reservations/${created.body.reservation_id}`);
    const shown = await request('GET', created.body.payment_url);
    expect(shown.status).toBe(200);
    expect(shown.body.reservation.reservation_id).toBe(created.body.reservation_id);
    // The default hold (DEFAULT_HOLD_MS, 60 s).
    const holdMs = Date.parse(created.body.hold_expires_at) - Date.now();
    expect(holdMs).toBeGreaterThan(55_000);
    expect(holdMs).toBeLessThanOrEqual(60_000);

    const intent = await request('POST', `${payment.http}/api/v1/payments/intents`, {
      reservation_id: 'rsv_links',
      amount: {amount: '1000', currency: 'KRW'},
      user_id: 'links',
    });
    expect(intent.status, JSON.stringify(intent.body)).toBe(200);
    expect(intent.body.payment_url).toBe(`${payment.http}/api/v1/payments/${intent.body.payment_intent_id}`);
    const status = await request('GET', intent.body.payment_url);
    expect(status.status).toBe(200);
    expect(status.body.payment.payment_intent_id).toBe(intent.body.payment_intent_id);
  });

  it('webhook_url may name a host only when PAYMENT_WEBHOOK_ALLOW_HOSTS lists it: no local port by default, in any form', async () => {
    const intent = (webhookUrl: string) => ({
      reservation_id: 'rsv_hook',
      amount: {amount: '1000', currency: 'KRW'},
      webhook_url: webhookUrl,
    });
    for (const url of [
      'http://hooks.example.com/payments',
      'http://127.1:6379/',
      'http://2130706433:6379/',
      'http://[::1]:6379/',
      'http://10.0.0.1/',
    ]) {
      const refused = await request('POST', `${payment.http}/api/v1/payments/intents`, intent(url));
      expect(refused.status, url).toBe(400);
      expectEnvelope(refused.body, 'INVALID_ARGUMENT');
    }

    const open = await startMock(
      'payment',
      {httpPort: 0, grpcPort: 0},
      {...QUIET, PAYMENT_WEBHOOK_ALLOW_HOSTS: 'hooks.example.com, 127.0.0.1'},
    );
    mocks.push(open);
    for (const url of ['http://hooks.example.com/payments', 'http://127.1:6379/']) {
      const accepted = await request('POST', `http://127.0.0.1:${open.httpPort}/api/v1/payments/intents`, intent(url));
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    }
    expect(
      (await request('POST', `http://127.0.0.1:${open.httpPort}/api/v1/payments/intents`, intent('http://[::1]:6379/')))
        .status,
    ).toBe(400);

    await expect(
      startMock('payment', {httpPort: 0, grpcPort: 0}, {...QUIET, PAYMENT_WEBHOOK_ALLOW_ANY_HOST: 'sometimes'}),
    ).rejects.toThrow(/PAYMENT_WEBHOOK_ALLOW_ANY_HOST/);
    await expect(
      startMock('payment', {httpPort: 0, grpcPort: 0}, {...QUIET, PAYMENT_WEBHOOK_ALLOW_HOSTS: 'http://x/'}),
    ).rejects.toThrow(/PAYMENT_WEBHOOK_ALLOW_HOSTS/);
  });

  it("binds MOCK_HOST (default 127.0.0.1), not the gateway's SERVER_HOST", async (context) => {
    // Every 127/8 address is loopback on Linux; elsewhere 127.0.0.2 may not exist.
    if (!(await canListen('127.0.0.2'))) context.skip();
    const kept = await startMock('reservation', {httpPort: 0, grpcPort: 0}, {...QUIET, SERVER_HOST: '0.0.0.0'});
    mocks.push(kept);
    expect((await request('GET', `http://127.0.0.1:${kept.httpPort}/healthz`)).status).toBe(200);
    // Bound to 127.0.0.1 only: another address of this machine is refused, /admin/faults included.
    await expect(fetch(`http://127.0.0.2:${kept.httpPort}/admin/faults`)).rejects.toThrow();

    const moved = await startMock('reservation', {httpPort: 0, grpcPort: 0}, {...QUIET, MOCK_HOST: '127.0.0.2'});
    mocks.push(moved);
    const created = await request('POST', `http://127.0.0.2:${moved.httpPort}/api/v1/reservations`, {
      event_id: CONCERT,
      quantity: 1,
    });
    expect(created.status).toBe(200);
    expect(created.body.payment_url).toBe(
      `http://127.0.0.2:${moved.httpPort}/api/v1/reservations/${created.body.reservation_id}`,
    );
  });

  it('refuses a retention that is not a positive duration, naming the variable', async () => {
    for (const variable of ['MOCK_IDEMPOTENCY_TTL', 'MOCK_FINISHED_RETENTION', 'MOCK_CONFIRMED_RETENTION']) {
      await expect(startMock('payment', {httpPort: 0, grpcPort: 0}, {...QUIET, [variable]: '0'})).rejects.toThrow(
        new RegExp(variable),
      );
      await expect(
        startMock('reservation', {httpPort: 0, grpcPort: 0}, {...QUIET, [variable]: 'soon'}),
      ).rejects.toThrow(new RegExp(variable));
    }
  });
});

function canListen(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}
