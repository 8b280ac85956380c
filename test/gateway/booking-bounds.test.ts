/**
 * One user cannot hurt the rest: the gateway's booking calls are bounded at the door (seats per order,
 * text sizes, calls in flight per user) on both doors, a request refused for itself never opens the
 * circuit for others, a reservation whose outcome is unknown keeps its token spent, and production
 * does not pass the payment mock's test switches (scenario, webhook_url) from clients on.
 * Real parts: Redis, the reservation and payment mocks and the gateway, all on loopback.
 */
import {createServer, type Server} from 'node:http';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fromBinary, type DescMessage, type Message} from '@bufbuild/protobuf';
import {anyUnpack} from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {DEFAULT_CATALOG_FILE} from '../../src/services/catalog.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {
  admit,
  backendEnv,
  bearer,
  DEV_SECRET,
  mockCalls,
  send,
  startStackGateway,
  startTestMock,
  type Answer,
} from '../helpers/stack.js';

const CONCERT = 'evt_2026_concert';
/** An event whose own rule (the catalogue's, enforced by the reservation mock) is 4 seats per order. */
const MUSICAL = 'evt_2026_musical';
const MUSICAL_MAX = 4;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let catalogDir: string | undefined;
const mocks: RunningMock[] = [];
const gateways: TestGateway[] = [];
const clients: grpc.Client[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment', {scenario: 'APPROVE'});
});

afterEach(() => {
  reservation?.faults.update({latencyMs: 0, errorRate: 0});
});

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled([reservation?.close(), payment?.close(), ...mocks.map((mock) => mock.close())]);
  await disposeRedis(redis);
  if (catalogDir) await rm(catalogDir, {recursive: true, force: true});
});

async function gatewayWith(env: Record<string, string> = {}, reservationMock = reservation!): Promise<TestGateway> {
  const gateway = await startStackGateway(backendEnv(reservationMock, payment!, redis!.address), {
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '100',
    ...env,
  });
  gateways.push(gateway);
  return gateway;
}

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json?.error?.code, answer.text).toBe(code);
}

/** Seat ids of the concert's R section, in order: R-A1..R-A20, R-B1... */
function seats(count: number): string[] {
  return Array.from({length: count}, (_, index) => `R-${'ABCDE'[Math.floor(index / 20)]}${(index % 20) + 1}`);
}

/** The reason (our code) in the ErrorInfo of a gRPC error's details. */
async function grpcReason(error: grpc.ServiceError): Promise<string | undefined> {
  const {registry} = await loadContractSet();
  const raw = error.metadata?.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(raw)) return undefined;
  const status = fromBinary(registry.getMessage('google.rpc.Status') as DescMessage, raw) as Message & {
    details: Parameters<typeof anyUnpack>[0][];
  };
  for (const detail of status.details) {
    const info = anyUnpack(detail, registry);
    if (info?.$typeName === 'google.rpc.ErrorInfo') return (info as Message & {reason?: string}).reason;
  }
  return undefined;
}

async function refusedAtDoor(gateway: TestGateway, code: string): Promise<number> {
  const response = await fetch(`${gateway.http}/metrics`, {signal: AbortSignal.timeout(10_000)});
  const samples = parseMetrics(await response.text());
  return (
    samples.find((sample) => sample.name === 'gateway_booking_refusals_total' && sample.labels.code === code)?.value ??
    0
  );
}

describe('seats per order', () => {
  it(
    'a gRPC CreateReservation with 60,000 seat ids is refused at the door, five times over, and the circuit stays closed for everyone',
    {timeout: 120_000},
    async () => {
      // Two failures open a road; the old gateway sent these calls on, the mock took seconds each, and
      // the timeouts opened both roads (gRPC, then HTTP): every user's call was refused after that.
      const gateway = await gatewayWith({BACKEND_BREAKER_FAILURES: '2', BACKEND_RESERVATION_API_TIMEOUT: '2s'});
      const service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
      clients.push(service);
      const metadata = (auth: string) => {
        const value = new grpc.Metadata();
        value.set('authorization', auth);
        return value;
      };
      const mallory = await bearer('mallory');
      // 60,000 seat ids (about 600 KB) are over the gRPC message limit; 2,000 (about 16 KB) fit in a
      // message and are over the seats per order. Both are refused at the door, never by the backend.
      const huge = Array.from({length: 60_000}, (_, index) => `S-X${index}`);
      const many = huge.slice(0, 2_000);
      const before = await mockCalls(reservation!, 'CreateReservation');
      const create = async (seatIds: string[]) => {
        const token = await admit(gateway.http, CONCERT, 'mallory');
        return unaryCall(
          service,
          'CreateReservation',
          {event_id: CONCERT, seat_ids: seatIds, reservation_token: token},
          metadata(mallory),
        ).then(
          () => undefined,
          (failure: grpc.ServiceError) => failure,
        );
      };
      for (let call = 1; call <= 5; call++) {
        const tooLarge = await create(huge);
        expect(tooLarge?.code, `call ${call}`).toBe(grpc.status.RESOURCE_EXHAUSTED);
        const tooMany = await create(many);
        expect(tooMany?.code, `call ${call}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(await grpcReason(tooMany!)).toBe('TOO_MANY_SEATS');
        expect(tooMany!.details).toContain('at most 10 seats');
      }
      // Refused by the gateway itself: the backend never heard of them.
      expect(await mockCalls(reservation!, 'CreateReservation')).toEqual(before);
      expect(await refusedAtDoor(gateway, 'TOO_MANY_SEATS')).toBe(5);

      const alice = await bearer('alice');
      const availability = await unaryCall(service, 'GetEventAvailability', {event_id: CONCERT}, metadata(alice));
      expect(availability.total_available).toBeGreaterThan(0);
      const rest = await send(gateway.http, 'GET', `/api/v1/events/${CONCERT}/availability`, {auth: alice});
      expect(rest.status, rest.text).toBe(200);
    },
  );

  it('11 seats are refused (400 TOO_MANY_SEATS, the token still usable), 10 are held, on REST and gRPC', async () => {
    const gateway = await gatewayWith();
    const auth = await bearer('carol');
    const token = await admit(gateway.http, CONCERT, 'carol');
    const create = (body: Record<string, unknown>) =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: CONCERT, reservation_token: token, ...body},
      });

    const eleven = await create({seat_ids: seats(11)});
    expectError(eleven, 400, 'TOO_MANY_SEATS');
    expect(eleven.json.error.message).toContain('at most 10 seats');
    expectError(await create({quantity: 11}), 400, 'TOO_MANY_SEATS');

    const ten = await create({seat_ids: seats(10)});
    expect(ten.status, ten.text).toBe(201);
    expect(ten.json.seat_ids).toEqual(seats(10));

    const service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
    clients.push(service);
    const metadata = new grpc.Metadata();
    metadata.set('authorization', auth);
    const again = await admit(gateway.http, CONCERT, 'carol');
    const refused = await unaryCall(
      service,
      'CreateReservation',
      {event_id: CONCERT, quantity: 11, reservation_token: again},
      metadata,
    ).catch((error: grpc.ServiceError) => error);
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await grpcReason(refused as grpc.ServiceError)).toBe('TOO_MANY_SEATS');
    const held = await unaryCall(
      service,
      'CreateReservation',
      {event_id: CONCERT, quantity: 10, reservation_token: again},
      metadata,
    );
    expect(held.reserved_seats).toHaveLength(10);
  });

  it("an event's own lower limit is the backend's refusal: passed on as 400 TOO_MANY_SEATS, the token kept, the circuit closed", async () => {
    catalogDir = await mkdtemp(path.join(tmpdir(), 'tacos-booking-bounds-'));
    const catalogFile = path.join(catalogDir, 'catalog.json');
    const catalog = JSON.parse(await readFile(DEFAULT_CATALOG_FILE, 'utf8')) as {events: Array<{id: string}>};
    await writeFile(
      catalogFile,
      JSON.stringify({
        events: catalog.events.map((event) =>
          event.id === MUSICAL ? {...event, max_seats_per_order: MUSICAL_MAX} : event,
        ),
      }),
    );
    const strict = await startTestMock('reservation', {catalogFile});
    mocks.push(strict);
    const gateway = await gatewayWith({BACKEND_BREAKER_FAILURES: '2'}, strict);
    const auth = await bearer('dave');
    const token = await admit(gateway.http, MUSICAL, 'dave');
    const create = (quantity: number) =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: MUSICAL, quantity, reservation_token: token},
      });
    for (let call = 1; call <= 3; call++) {
      const refused = await create(MUSICAL_MAX + 1);
      expectError(refused, 400, 'TOO_MANY_SEATS');
      expect(refused.json.error.message).toContain(`at most ${MUSICAL_MAX} seats`);
    }
    const held = await create(MUSICAL_MAX);
    expect(held.status, held.text).toBe(201);
    expect(held.json.seat_ids).toHaveLength(MUSICAL_MAX);
  });

  it('texts sent on to the backends are capped (BOOKING_MAX_FIELD_LENGTH): 400 FIELD_TOO_LONG naming the field', async () => {
    const gateway = await gatewayWith({BOOKING_MAX_FIELD_LENGTH: '64'});
    const auth = await bearer('erin');
    const before = await mockCalls(reservation!);
    const cancel = await send(gateway.http, 'POST', '/api/v1/reservations/rsv_x/cancel', {
      auth,
      body: {reason: 'x'.repeat(65)},
    });
    expectError(cancel, 400, 'FIELD_TOO_LONG');
    expect(cancel.json.error.field).toBe('reason');
    const seat = await send(gateway.http, 'POST', '/api/v1/reservations', {
      auth,
      body: {event_id: CONCERT, seat_ids: ['R-A1', 'R'.repeat(65)], reservation_token: 'unused'},
    });
    expectError(seat, 400, 'FIELD_TOO_LONG');
    expect(seat.json.error.field).toBe('seat_ids[1]');
    expect(await mockCalls(reservation!)).toEqual(before);
  });
});

describe('a reservation whose outcome is unknown', () => {
  it('a timed-out CreateReservation says the reservation may exist, and its token is not reusable', async () => {
    const gateway = await gatewayWith({BACKEND_RESERVATION_API_TIMEOUT: '1s'});
    const auth = await bearer('frank');
    const token = await admit(gateway.http, CONCERT, 'frank');
    const create = (seat: string, key: string) =>
      send(gateway.http, 'POST', '/api/v1/reservations', {
        auth,
        headers: {'idempotency-key': key},
        body: {event_id: CONCERT, seat_ids: [seat], reservation_token: token},
      });
    reservation!.faults.update({latencyMs: 3000});
    const slow = await create('S-E1', 'first');
    expectError(slow, 504, 'UPSTREAM_TIMEOUT');
    expect(slow.json.error.message).toMatch(/may have been made.*token is used up/);

    reservation!.faults.update({latencyMs: 0});
    // Another request with the same token (another seat, another key) would be a second hold.
    expectError(await create('S-E2', 'second'), 403, 'RESERVATION_TOKEN_INVALID');
    expectError(await create('S-E1', 'first'), 403, 'RESERVATION_TOKEN_INVALID');
  });
});

describe('calls in flight per user', () => {
  it('the 5th concurrent reservation call of one user is refused 429 TOO_MANY_IN_FLIGHT at the door; another user is served meanwhile; the slot frees', async () => {
    const gateway = await gatewayWith({BACKEND_RESERVATION_API_TIMEOUT: '10s'});
    const grace = await bearer('grace');
    const heidi = await bearer('heidi');
    const reserve = async (auth: string, user: string) => {
      const token = await admit(gateway.http, CONCERT, user);
      return () =>
        send(gateway.http, 'POST', '/api/v1/reservations', {
          auth,
          body: {event_id: CONCERT, quantity: 1, reservation_token: token},
        });
    };
    const calls = [
      ...(await Promise.all(Array.from({length: 5}, () => reserve(grace, 'grace')))),
      await reserve(heidi, 'heidi'),
    ];
    const before = await mockCalls(reservation!, 'CreateReservation');
    // Each call stays in flight for a while at the backend, so that all of them overlap.
    reservation!.faults.update({latencyMs: 1500});
    const answers = await Promise.all(calls.map((call) => call()));
    const graces = answers.slice(0, 5);
    expect(graces.filter((answer) => answer.status === 201)).toHaveLength(4);
    const refused = graces.filter((answer) => answer.status !== 201);
    expect(refused).toHaveLength(1);
    expectError(refused[0], 429, 'TOO_MANY_IN_FLIGHT');
    expect(answers[5].status, answers[5].text).toBe(201);
    // The refused call never reached the backend.
    const arrived = await mockCalls(reservation!, 'CreateReservation');
    expect(arrived.grpc + arrived.http - before.grpc - before.http).toBe(5);
    expect(await refusedAtDoor(gateway, 'TOO_MANY_IN_FLIGHT')).toBe(1);

    reservation!.faults.update({latencyMs: 0});
    const next = await (await reserve(grace, 'grace'))();
    expect(next.status, next.text).toBe(201);
  });
});

describe("the payment mock's test switches from clients", () => {
  let hook: Server | undefined;
  const hooked: string[] = [];

  beforeAll(async () => {
    hook = createServer((request, response) => {
      hooked.push(request.url ?? '');
      response.end('{}');
    });
    await new Promise<void>((resolve) => hook!.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => hook?.close(resolve));
  });

  /** A payment intent made through `gateway` for a fresh hold of `user`, with scenario fail (and a webhook_url). */
  async function intentWithSwitches(
    gateway: TestGateway,
    user: string,
    withWebhook: boolean,
    secret = DEV_SECRET,
  ): Promise<string> {
    const auth = await bearer(user, secret);
    const token = await admit(gateway.http, CONCERT, user);
    const held = await send(gateway.http, 'POST', '/api/v1/reservations', {
      auth,
      body: {event_id: CONCERT, quantity: 1, reservation_token: token},
    });
    expect(held.status, held.text).toBe(201);
    const webhookUrl = `http://127.0.0.1:${(hook!.address() as AddressInfo).port}/hook`;
    const intent = await send(gateway.http, 'POST', '/api/v1/payment/intent', {
      auth,
      body: {
        reservation_id: held.json.reservation_id,
        scenario: 'fail',
        ...(withWebhook ? {webhook_url: webhookUrl} : {}),
      },
    });
    expect(intent.status, intent.text).toBe(200);
    return intent.json.payment_intent_id as string;
  }

  /** The intent as the payment mock holds it (its own REST route). */
  async function atTheMock(intentId: string): Promise<Record<string, any>> {
    const found = await send(`http://127.0.0.1:${payment!.httpPort}`, 'GET', `/api/v1/payments/${intentId}`);
    expect(found.status, found.text).toBe(200);
    return found.json.payment;
  }

  it('in production, scenario and webhook_url are dropped before the payment service (a debug line says so)', async () => {
    // Production refuses the public development secret: a key of its own.
    const secret = 'booking-bounds-production-secret';
    const gateway = await gatewayWith({
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: secret,
      RATE_LIMIT_ENABLED: 'false',
      LOG_LEVEL: 'debug',
    });
    const intentId = await intentWithSwitches(gateway, 'ivan', true, secret);
    // The mock's own default scenario decided, not the client's "fail".
    expect((await atTheMock(intentId)).metadata.scenario).toBe('PAYMENT_SCENARIO_APPROVE');
    // The intent has no webhook_url: a forced webhook has nowhere to go.
    const webhook = await send(
      `http://127.0.0.1:${payment!.httpPort}`,
      'POST',
      `/api/v1/payments/${intentId}/webhook`,
      {
        body: {target_status: 'PAYMENT_STATUS_CANCELLED', force_trigger: true},
      },
    );
    expect(webhook.status, webhook.text).toBe(200);
    expect(webhook.json.webhook_id).toBe('');
    expect(hooked).toEqual([]);
    const line = gateway.logs.find(
      (entry) => entry.msg === 'production: client test switches not sent to the payment service',
    );
    expect(line?.dropped).toEqual(['scenario', 'webhook_url']);
    expect(line?.level).toBe('debug');
  });

  it('outside production, the scenario is forwarded as before', async () => {
    const gateway = await gatewayWith();
    const intentId = await intentWithSwitches(gateway, 'judy', false);
    expect((await atTheMock(intentId)).metadata.scenario).toBe('PAYMENT_SCENARIO_FAIL');
  });
});
