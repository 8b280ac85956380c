import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import {RESERVATION_ROUTES} from '../../src/services/backends/routes.js';
import {TacosError} from '../../src/services/errors.js';
import type {MockCallContext, MockDefinition} from '../../src/services/mocks/mock-definition.js';
import {type Catalog, loadCatalog} from '../../src/services/catalog.js';
import {createReservationMock} from '../../src/services/mocks/reservation/reservation-mock.js';
import type {Retention} from '../../src/services/mocks/retention.js';

const RESERVATION = 'reservation.v1.ReservationService';
const INVENTORY = 'reservation.v1.InventoryService';
const CONCERT = 'evt_2026_concert';
const MUSICAL = 'evt_2026_musical';
const START = Date.parse('2026-12-01T00:00:00Z');

type Message = Record<string, any>;

let catalog: Catalog;
let dir: string;
const opened: MockDefinition[] = [];

beforeAll(async () => {
  catalog = await loadCatalog();
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-catalog-'));
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

afterEach(() => {
  for (const mock of opened.splice(0)) mock.close();
});

/** A mock with a hand-driven clock unless `realTime`; `tick` moves the clock on. */
function setup(options: {holdMs?: number; realTime?: boolean; catalog?: Catalog; retention?: Partial<Retention>} = {}) {
  let clock = START;
  const mock = createReservationMock({
    catalog: options.catalog ?? catalog,
    holdMs: options.holdMs ?? 60_000,
    now: options.realTime ? undefined : () => clock,
    retention: options.retention,
  });
  opened.push(mock);
  const context = (): MockCallContext => ({protocol: 'grpc', signal: new AbortController().signal, requestId: 't'});
  const call = (service: string) => (method: string, request: Message) =>
    mock.services[service][method](request, context()) as Promise<Message>;
  return {
    mock,
    rsv: call(RESERVATION),
    inv: call(INVENTORY),
    tick: (ms: number) => (clock += ms),
    now: () => (options.realTime ? Date.now() : clock),
  };
}

// Requests as @grpc/proto-loader hands them over: every field present, defaults filled.
const createReq = (fields: Message): Message => ({
  event_id: '',
  seat_ids: [],
  quantity: 0,
  user_id: '',
  reservation_token: '',
  idempotency_key: '',
  metadata: null,
  ...fields,
});
const getReq = (reservation_id: string, user_id = ''): Message => ({reservation_id, user_id});
const confirmReq = (fields: Message): Message => ({
  reservation_id: '',
  payment_intent_id: '',
  user_id: '',
  idempotency_key: '',
  ...fields,
});
const cancelReq = (fields: Message): Message => ({
  reservation_id: '',
  user_id: '',
  reason: '',
  idempotency_key: '',
  ...fields,
});
const listReq = (fields: Message, pagination: Message = {}): Message => ({
  user_id: '',
  status: 'RESERVATION_STATUS_UNSPECIFIED',
  event_id: '',
  ...fields,
  pagination: {page: 0, page_size: 0, cursor: '', ...pagination},
});
const extendReq = (fields: Message): Message => ({
  reservation_id: '',
  user_id: '',
  extension_seconds: 0,
  reason: '',
  idempotency_key: '',
  ...fields,
});
const checkReq = (fields: Message): Message => ({event_id: '', seat_ids: [], quantity: 0, section: '', ...fields});
const reserveReq = (fields: Message): Message => ({
  reservation_id: '',
  event_id: '',
  seat_ids: [],
  quantity: 0,
  user_id: '',
  hold_expires_at: null,
  idempotency_key: '',
  ...fields,
});
const commitReq = (fields: Message): Message => ({
  reservation_id: '',
  event_id: '',
  seat_ids: [],
  quantity: 0,
  payment_intent_id: '',
  user_id: '',
  idempotency_key: '',
  ...fields,
});
const releaseReq = (fields: Message): Message => ({
  reservation_id: '',
  event_id: '',
  seat_ids: [],
  quantity: 0,
  reason: '',
  idempotency_key: '',
  ...fields,
});

async function failure(promise: Promise<unknown>): Promise<TacosError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TacosError);
    return error as TacosError;
  }
  throw new Error('expected the call to fail');
}

function ms(stamp: {seconds: string; nanos: number}): number {
  return Number(stamp.seconds) * 1000 + stamp.nanos / 1_000_000;
}

async function sectionCounts(inv: ReturnType<typeof setup>['inv'], eventId: string, section: string): Promise<Message> {
  const status = await inv('GetInventoryStatus', {event_id: eventId, section});
  return status.sections[0];
}

describe('catalogue', () => {
  it('ships a small catalogue with generated seat ids and a one-seat section', async () => {
    const sections = catalog.events
      .filter((event) => [CONCERT, MUSICAL].includes(event.id))
      .flatMap((event) => event.sections);
    const seats = sections.reduce((sum, section) => sum + section.rows * section.seats_per_row, 0);
    expect(seats).toBeGreaterThan(100);
    expect(seats).toBeLessThan(1000);
    expect(sections.some((section) => section.rows * section.seats_per_row === 1)).toBe(true);

    const {inv} = setup();
    const check = await inv(
      'CheckAvailability',
      checkReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'VIP-B10', 'S-E20']}),
    );
    expect(check.available).toBe(true);
    expect(check.available_seats.map((seat: Message) => [seat.id, seat.section, seat.row, seat.number])).toEqual([
      ['VIP-A1', 'VIP', 'A', '1'],
      ['VIP-B10', 'VIP', 'B', '10'],
      ['S-E20', 'S', 'E', '20'],
    ]);
    const beyond = await failure(
      inv('CheckAvailability', checkReq({event_id: CONCERT, seat_ids: ['VIP-C1', 'VIP-A11']})),
    );
    expect(beyond).toMatchObject({code: 'INVALID_ARGUMENT', field: 'seat_ids'});
    expect(beyond.message).toContain('VIP-C1, VIP-A11');
  });

  it("ships the web client's events: nine floors of stepped rows with aisles, seats <floor>-<row>-<n> at 120000 KRW", async () => {
    const clientEvents = ['evt_2025_1001', 'evt_2025_1002', 'evt_2025_1004', 'evt_2025_1005', 'evt_2025_1006'];
    expect(catalog.events.map((event) => event.id)).toEqual(
      expect.arrayContaining([CONCERT, MUSICAL, ...clientEvents]),
    );
    const iu = catalog.events.find((event) => event.id === 'evt_2025_1001')!;
    expect(iu.name).toBe('IU 2025 CONCERT [THE GOLDEN HOUR : ENCORE]');
    expect(iu.sections.map((section) => [section.id, section.rows])).toEqual([
      ['VIP', 15],
      ['R', 16],
      ['S', 17],
      ['A', 18],
      ['B', 19],
      ['C', 20],
      ['D', 21],
      ['E', 22],
      ['F', 23],
    ]);
    // Row r of R rows has 10 + 2 * floor(10 r / R) seats; VIP 5 and 6 are aisles.
    expect(iu.sections[0].row_seats!.slice(0, 7)).toEqual([10, 12, 14, 14, 0, 0, 18]);
    expect(iu.sections.every((section) => section.price.amount === 120000 && section.price.currency === 'KRW')).toBe(
      true,
    );

    const {inv} = setup();
    const check = await inv(
      'CheckAvailability',
      checkReq({event_id: 'evt_2025_1001', seat_ids: ['VIP-3-12', 'VIP-15-30', 'F-23-30']}),
    );
    expect(check.available).toBe(true);
    expect(check.available_seats.map((seat: Message) => [seat.id, seat.section, seat.row, seat.number])).toEqual([
      ['VIP-3-12', 'VIP', '3', '12'],
      ['VIP-15-30', 'VIP', '15', '30'],
      ['F-23-30', 'F', '23', '30'],
    ]);
    // An aisle row has no seats, and row 3 of VIP has 14: both are named as unknown.
    const aisle = await failure(
      inv('CheckAvailability', checkReq({event_id: 'evt_2025_1001', seat_ids: ['VIP-5-1', 'VIP-3-15']})),
    );
    expect(aisle).toMatchObject({code: 'INVALID_ARGUMENT', field: 'seat_ids'});
    expect(aisle.message).toContain('VIP-5-1, VIP-3-15');
  });

  it('refuses a row_seats list with a negative count, naming the row', async () => {
    const file = path.join(dir, 'bad-rows.json');
    const event = {
      ...catalog.events[0],
      sections: [{id: 'VIP', name: 'VIP', row_seats: [10, -1], price: {amount: 1, currency: 'KRW'}}],
    };
    await writeFile(file, JSON.stringify({events: [event]}));
    const error = await failure(loadCatalog(file));
    expect(error.message).toContain('sections[0].row_seats[1] must be a whole number from 0 (an aisle)');
  });

  it('names the event and field at fault in a malformed file', async () => {
    const file = path.join(dir, 'bad-price.json');
    const good = catalog.events[0];
    const bad = {
      ...catalog.events[1],
      sections: [{...catalog.events[1].sections[0], price: {amount: 12.5, currency: 'KRW'}}],
    };
    await writeFile(file, JSON.stringify({events: [good, bad]}));
    const error = await failure(loadCatalog(file));
    expect(error.message).toContain(`event "${MUSICAL}" (events[1])`);
    expect(error.message).toContain('sections[0].price.amount');
    expect(error.message).toContain('12.5');
    expect(error.exitCode).toBe(1);
    expect(error.hint).toBeTruthy();
  });

  it('reads max_seats_per_order (1-100, default 10) per event', async () => {
    expect(catalog.events.find((event) => event.id === MUSICAL)?.max_seats_per_order).toBe(10);
    const file = path.join(dir, 'bad-limit.json');
    await writeFile(file, JSON.stringify({events: [{...catalog.events[0], max_seats_per_order: 0}]}));
    expect((await failure(loadCatalog(file))).message).toContain(
      'max_seats_per_order must be a whole number from 1 to 100 (got 0)',
    );
  });

  it('reports a misspelt field, a missing field, a bad time, text that is not JSON and a missing file', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'typo.json',
        JSON.stringify({
          events: [
            {
              ...catalog.events[0],
              sections: [{id: 'A', name: 'A', rows: 1, seat_per_row: 2, price: {amount: 1, currency: 'KRW'}}],
            },
          ],
        }),
        /sections\[0\] has an unknown field "seat_per_row"/,
      ],
      [
        'missing.json',
        JSON.stringify({events: [{...catalog.events[0], venue: undefined}]}),
        new RegExp(`event "${CONCERT}" \\(events\\[0\\]\\) lacks the field "venue"`),
      ],
      [
        'time.json',
        JSON.stringify({events: [{...catalog.events[0], start_time: 'next friday'}]}),
        /start_time must be an RFC 3339 time/,
      ],
      ['not-json.json', '{"events": [', /is not JSON/],
    ];
    for (const [name, content, expected] of cases) {
      await writeFile(path.join(dir, name), content);
      const error = await failure(loadCatalog(path.join(dir, name)));
      expect(error.message, name).toMatch(expected);
      expect(error.exitCode).toBe(1);
    }
    const missing = await failure(loadCatalog(path.join(dir, 'nowhere.json')));
    expect(missing.message).toMatch(/nowhere\.json does not exist/);
    expect(missing.hint).toMatch(/--catalog/);
  });
});

describe('the mock definition', () => {
  it('serves every method of both services on the reservation routes', () => {
    const {mock} = setup();
    expect(mock.name).toBe('reservation');
    expect(Object.keys(mock.services[RESERVATION]).sort()).toEqual([
      'CancelReservation',
      'ConfirmReservation',
      'CreateReservation',
      'ExtendHold',
      'GetReservation',
      'ListReservations',
    ]);
    expect(Object.keys(mock.services[INVENTORY]).sort()).toEqual([
      'CheckAvailability',
      'CommitReservation',
      'GetInventoryStatus',
      'ReleaseHold',
      'ReserveSeat',
    ]);
    expect(mock.routes).toEqual(RESERVATION_ROUTES);
    expect(() => createReservationMock({catalog, holdMs: 0})).toThrow(/hold time/);
  });
});

describe('CreateReservation', () => {
  it('holds the named seats with their prices, total and expiry', async () => {
    const {rsv, inv, now} = setup({holdMs: 60_000});
    const created = await rsv(
      'CreateReservation',
      createReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'R-A1'], quantity: 2, user_id: 'u1'}),
    );
    expect(created.reservation_id).toMatch(/^rsv_\w+$/);
    expect(created.status).toBe('RESERVATION_STATUS_HOLD');
    expect(ms(created.hold_expires_at)).toBe(now() + 60_000);
    expect(created.reserved_seats).toEqual([
      {
        id: 'VIP-A1',
        section: 'VIP',
        row: 'A',
        number: '1',
        price: {amount: '198000', currency: 'KRW'},
        status: 'SEAT_STATUS_RESERVED',
      },
      {
        id: 'R-A1',
        section: 'R',
        row: 'A',
        number: '1',
        price: {amount: '154000', currency: 'KRW'},
        status: 'SEAT_STATUS_RESERVED',
      },
    ]);
    expect(created.total_amount).toEqual({amount: String(198000 + 154000), currency: 'KRW'});
    // No checkout page: the link is the reservation's REST route on the mock (default port 8010).
    expect(created.payment_url).toBe(`http://127.0.0.1:8010/api/v1/reservations/${created.reservation_id}`);

    const check = await inv('CheckAvailability', checkReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'VIP-A2']}));
    expect(check).toMatchObject({available: false, unavailable_seat_ids: ['VIP-A1']});
    expect(await sectionCounts(inv, CONCERT, 'VIP')).toMatchObject({available_seats: 19, reserved_seats: 1});
  });

  it('picks the first available seats for a quantity', async () => {
    const {rsv} = setup();
    await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A2']}));
    const first = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 3}));
    expect(first.reserved_seats.map((seat: Message) => seat.id)).toEqual(['VIP-A1', 'VIP-A3', 'VIP-A4']);
    const second = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 2}));
    expect(second.reserved_seats.map((seat: Message) => seat.id)).toEqual(['VIP-A5', 'VIP-A6']);
    expect(second.total_amount).toEqual({amount: '396000', currency: 'KRW'});
  });

  it('refuses unknown events and seats, taken seats, and inconsistent requests', async () => {
    const {rsv} = setup();
    expect(await failure(rsv('CreateReservation', createReq({event_id: 'evt_nope', quantity: 1})))).toMatchObject({
      code: 'NOT_FOUND',
    });

    const unknown = await failure(
      rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'VIP-Z99']})),
    );
    expect(unknown).toMatchObject({code: 'INVALID_ARGUMENT', field: 'seat_ids'});
    expect(unknown.message).toContain('VIP-Z99');

    await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'VIP-A2']}));
    const taken = await failure(
      rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A3', 'VIP-A2']})),
    );
    expect(taken.code).toBe('INVENTORY_CONFLICT');
    expect(taken.message).toContain('VIP-A2');
    expect(taken.message).not.toContain('VIP-A3');

    expect(
      await failure(rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-B1'], quantity: 2}))),
    ).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'quantity',
    });
    expect(await failure(rsv('CreateReservation', createReq({event_id: CONCERT})))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'quantity',
    });
    expect(
      await failure(rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-B1', 'VIP-B1']}))),
    ).toMatchObject({field: 'seat_ids'});
    // A failed create holds nothing: VIP-A3 is still free.
    const check = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A3', 'VIP-B1']}));
    expect(check.status).toBe('RESERVATION_STATUS_HOLD');
  });

  it("refuses more seats than the event's max_seats_per_order (default 10) with TOO_MANY_SEATS, and holds nothing", async () => {
    const {rsv, inv} = setup();
    const seats = (count: number) => Array.from({length: count}, (_, index) => `R-A${index + 1}`);
    const eleven = await failure(rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: seats(11)})));
    expect(eleven).toMatchObject({code: 'TOO_MANY_SEATS', field: 'seat_ids'});
    expect(eleven.message).toContain('at most 10 seats');
    expect(await failure(rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 11})))).toMatchObject({
      code: 'TOO_MANY_SEATS',
      field: 'quantity',
    });
    expect(
      await failure(inv('ReserveSeat', reserveReq({reservation_id: 'r-11', event_id: CONCERT, seat_ids: seats(11)}))),
    ).toMatchObject({code: 'TOO_MANY_SEATS'});
    expect(await sectionCounts(inv, CONCERT, 'R')).toMatchObject({reserved_seats: 0});

    const ten = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: seats(10)}));
    expect(ten.reserved_seats).toHaveLength(10);

    // Another event's own rule: 2 seats per order.
    const strict = setup({catalog: {events: [{...catalog.events[0], max_seats_per_order: 2}]}});
    expect(await failure(strict.rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 3})))).toMatchObject({
      code: 'TOO_MANY_SEATS',
    });
    expect(
      (await strict.rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 2}))).reserved_seats,
    ).toHaveLength(2);
  });

  it('answers INSUFFICIENT_INVENTORY when fewer seats are left than asked for', async () => {
    // The musical sells its 97 seats in orders of up to 100 here, so that 90 go at once.
    const {rsv} = setup({
      catalog: {
        events: catalog.events.map((event) => (event.id === MUSICAL ? {...event, max_seats_per_order: 100} : event)),
      },
    });
    const total = (await rsv('CreateReservation', createReq({event_id: MUSICAL, quantity: 90}))).reserved_seats.length;
    expect(total).toBe(90);
    const error = await failure(rsv('CreateReservation', createReq({event_id: MUSICAL, quantity: 8})));
    expect(error.code).toBe('INSUFFICIENT_INVENTORY');
    expect(error.message).toMatch(/Only 7 seat/);
    expect((await rsv('CreateReservation', createReq({event_id: MUSICAL, quantity: 7}))).reserved_seats.at(-1).id).toBe(
      'BOX-A1',
    );
  });

  it('repeats the first answer for a repeated idempotency_key and refuses it for another request', async () => {
    const {rsv, inv} = setup();
    const request = createReq({
      event_id: CONCERT,
      seat_ids: ['R-B1', 'R-B2'],
      user_id: 'u1',
      idempotency_key: 'key-1',
      reservation_token: 'tok-a',
    });
    const first = await rsv('CreateReservation', request);
    const again = await rsv('CreateReservation', {...request, seat_ids: ['R-B2', 'R-B1'], reservation_token: 'tok-b'});
    expect(again).toEqual(first);
    expect(await sectionCounts(inv, CONCERT, 'R')).toMatchObject({reserved_seats: 2});
    expect((await rsv('ListReservations', listReq({user_id: 'u1'}))).page_info.total_count).toBe(1);

    const other = await failure(rsv('CreateReservation', {...request, seat_ids: ['R-B3']}));
    expect(other.code).toBe('IDEMPOTENCY_CONFLICT');
    // The same key on another method is another operation.
    const confirmed = await rsv(
      'ConfirmReservation',
      confirmReq({reservation_id: first.reservation_id, idempotency_key: 'key-1'}),
    );
    expect(confirmed.status).toBe('RESERVATION_STATUS_CONFIRMED');
  });

  it('lets exactly one of two racing creates have the last seat', async () => {
    const {rsv} = setup();
    const race = await Promise.allSettled([
      rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BOX-A1'], user_id: 'a'})),
      rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BOX-A1'], user_id: 'b'})),
    ]);
    expect(race.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const lost = race.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({code: 'INVENTORY_CONFLICT'});

    // The same by quantity, on an event whose one seat is its last.
    const single: Catalog = {
      events: [{...catalog.events[1], sections: catalog.events[1].sections.filter((section) => section.id === 'BOX')}],
    };
    const lone = setup({catalog: single});
    const byQuantity = await Promise.allSettled([
      lone.rsv('CreateReservation', createReq({event_id: MUSICAL, quantity: 1})),
      lone.rsv('CreateReservation', createReq({event_id: MUSICAL, quantity: 1})),
    ]);
    expect(byQuantity.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((byQuantity.find((result) => result.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({
      code: 'INSUFFICIENT_INVENTORY',
    });
  });
});

describe('hold expiry', () => {
  it('gives the seats back on time without anyone touching the reservation', async () => {
    const {rsv, inv} = setup({holdMs: 300, realTime: true});
    const created = await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BOX-A1']}));
    const expiresAt = ms(created.hold_expires_at);
    expect(await sectionCounts(inv, MUSICAL, 'BOX')).toMatchObject({available_seats: 0, reserved_seats: 1});

    const deadline = Date.now() + 3000;
    let freedAt = 0;
    while (Date.now() < deadline) {
      const box = await sectionCounts(inv, MUSICAL, 'BOX');
      if (box.available_seats === 1) {
        freedAt = Date.now();
        break;
      }
      await sleep(20);
    }
    expect(freedAt).toBeGreaterThanOrEqual(expiresAt);
    expect(freedAt - expiresAt).toBeLessThan(300);
    const check = await inv('CheckAvailability', checkReq({event_id: MUSICAL, seat_ids: ['BOX-A1']}));
    expect(check.available).toBe(true);
    const {reservation} = await rsv('GetReservation', getReq(created.reservation_id));
    expect(reservation.status).toBe('RESERVATION_STATUS_EXPIRED');
  });

  it('expires by a timer: the reservation changed at its expiry, not when next read', async () => {
    const {rsv} = setup({holdMs: 200, realTime: true});
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    await sleep(900);
    const {reservation} = await rsv('GetReservation', getReq(created.reservation_id));
    expect(reservation.status).toBe('RESERVATION_STATUS_EXPIRED');
    expect(ms(reservation.updated_at) - ms(created.hold_expires_at)).toBeLessThan(250);
    expect(ms(reservation.updated_at)).toBeGreaterThanOrEqual(ms(created.hold_expires_at));
  });

  it('stops its timers on close (safe twice); holds still lapse when next touched', async () => {
    const {mock, rsv} = setup({holdMs: 200, realTime: true});
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    mock.close();
    mock.close();
    await sleep(700);
    const {reservation} = await rsv('GetReservation', getReq(created.reservation_id));
    expect(reservation.status).toBe('RESERVATION_STATUS_EXPIRED');
    // No timer fired: the expiry was noticed only now, 500 ms after the hold lapsed.
    expect(ms(reservation.updated_at) - ms(created.hold_expires_at)).toBeGreaterThan(400);
  });

  it('refuses to confirm, cancel or extend a lapsed hold, and counts its seats as free', async () => {
    const {rsv, inv, tick} = setup({holdMs: 60_000});
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['S-A1']}));
    tick(59_999);
    expect((await sectionCounts(inv, CONCERT, 'S')).reserved_seats).toBe(1);
    tick(1);
    expect(await sectionCounts(inv, CONCERT, 'S')).toMatchObject({reserved_seats: 0, available_seats: 100});
    const confirm = await failure(
      rsv('ConfirmReservation', confirmReq({reservation_id: created.reservation_id, payment_intent_id: 'pi_1'})),
    );
    expect(confirm.code).toBe('RESERVATION_EXPIRED');
    expect(confirm.message).toMatch(/expired/);
    expect((await failure(rsv('CancelReservation', cancelReq({reservation_id: created.reservation_id})))).code).toBe(
      'RESERVATION_EXPIRED',
    );
    expect(
      (await failure(rsv('ExtendHold', extendReq({reservation_id: created.reservation_id, extension_seconds: 30}))))
        .code,
    ).toBe('RESERVATION_EXPIRED');
    // Someone else can have the seat now.
    expect((await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['S-A1']}))).status).toBe(
      'RESERVATION_STATUS_HOLD',
    );
  });
});

describe('GetReservation', () => {
  it('shows the reservation to its owner, refuses others, and 404s unknown ids', async () => {
    const {rsv, now} = setup();
    const created = await rsv(
      'CreateReservation',
      createReq({
        event_id: CONCERT,
        seat_ids: ['VIP-A1', 'VIP-A2'],
        user_id: 'alice',
        metadata: {source: 'web', user_agent: '', ip_address: '', session_id: '', tags: {a: 'b'}},
      }),
    );
    const {reservation} = await rsv('GetReservation', getReq(created.reservation_id, 'alice'));
    expect(reservation).toMatchObject({
      reservation_id: created.reservation_id,
      event_id: CONCERT,
      user_id: 'alice',
      status: 'RESERVATION_STATUS_HOLD',
      quantity: 2,
      total_amount: {amount: '396000', currency: 'KRW'},
      order_id: '',
      metadata: {source: 'web', tags: {a: 'b'}},
    });
    expect(reservation.seats.map((seat: Message) => [seat.id, seat.status])).toEqual([
      ['VIP-A1', 'SEAT_STATUS_RESERVED'],
      ['VIP-A2', 'SEAT_STATUS_RESERVED'],
    ]);
    expect(ms(reservation.created_at)).toBe(now());
    expect(reservation.hold_expires_at).toEqual(created.hold_expires_at);
    // Without a user id the caller is not checked (the gateway passes the authenticated one).
    expect((await rsv('GetReservation', getReq(created.reservation_id))).reservation.reservation_id).toBe(
      created.reservation_id,
    );
    expect(await failure(rsv('GetReservation', getReq(created.reservation_id, 'mallory')))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await failure(rsv('GetReservation', getReq('rsv_unknown')))).toMatchObject({code: 'NOT_FOUND'});
    expect(await failure(rsv('GetReservation', getReq('')))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'reservation_id',
    });

    const anonymous = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    expect((await rsv('GetReservation', getReq(anonymous.reservation_id, 'anyone'))).reservation.user_id).toBe('');
  });
});

describe('ConfirmReservation', () => {
  it('sells a held reservation once', async () => {
    const {rsv, inv, tick, now} = setup();
    const created = await rsv(
      'CreateReservation',
      createReq({event_id: CONCERT, seat_ids: ['VIP-A1', 'VIP-A2'], user_id: 'u1'}),
    );
    tick(5000);
    const confirmed = await rsv(
      'ConfirmReservation',
      confirmReq({reservation_id: created.reservation_id, payment_intent_id: 'pi_1', user_id: 'u1'}),
    );
    expect(confirmed.order_id).toMatch(/^ord_\w+$/);
    expect(confirmed.status).toBe('RESERVATION_STATUS_CONFIRMED');
    expect(ms(confirmed.confirmed_at)).toBe(now());
    expect(confirmed.confirmed_seats.map((seat: Message) => [seat.id, seat.status])).toEqual([
      ['VIP-A1', 'SEAT_STATUS_SOLD'],
      ['VIP-A2', 'SEAT_STATUS_SOLD'],
    ]);
    expect(await sectionCounts(inv, CONCERT, 'VIP')).toMatchObject({
      sold_seats: 2,
      reserved_seats: 0,
      available_seats: 18,
    });
    const {reservation} = await rsv('GetReservation', getReq(created.reservation_id));
    expect(reservation).toMatchObject({
      status: 'RESERVATION_STATUS_CONFIRMED',
      order_id: confirmed.order_id,
      payment_intent_id: 'pi_1',
    });

    // A confirmed reservation does not expire.
    tick(120_000);
    expect((await rsv('GetReservation', getReq(created.reservation_id))).reservation.status).toBe(
      'RESERVATION_STATUS_CONFIRMED',
    );
    const twice = await failure(
      rsv('ConfirmReservation', confirmReq({reservation_id: created.reservation_id, payment_intent_id: 'pi_1'})),
    );
    expect(twice.code).toBe('FAILED_PRECONDITION');
    expect(twice.message).toMatch(/already confirmed/);
    expect(twice.message).toContain(confirmed.order_id);
    expect(
      await failure(rsv('ConfirmReservation', confirmReq({reservation_id: created.reservation_id, user_id: 'u2'}))),
    ).toMatchObject({code: 'NOT_FOUND'});
    expect(await failure(rsv('ConfirmReservation', confirmReq({reservation_id: 'rsv_nope'})))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses a cancelled reservation, saying so', async () => {
    const {rsv} = setup();
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    await rsv('CancelReservation', cancelReq({reservation_id: created.reservation_id}));
    const error = await failure(
      rsv('ConfirmReservation', confirmReq({reservation_id: created.reservation_id, payment_intent_id: 'pi'})),
    );
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.message).toMatch(/cancelled/);
  });

  it('repeats the first answer for a repeated idempotency_key', async () => {
    const {rsv} = setup();
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    const request = confirmReq({
      reservation_id: created.reservation_id,
      payment_intent_id: 'pi_1',
      idempotency_key: 'c-1',
    });
    const first = await rsv('ConfirmReservation', request);
    expect(await rsv('ConfirmReservation', request)).toEqual(first);
    expect((await failure(rsv('ConfirmReservation', {...request, payment_intent_id: 'pi_2'}))).code).toBe(
      'IDEMPOTENCY_CONFLICT',
    );
  });
});

describe('CancelReservation', () => {
  it('releases the seats of a hold, answers the same when repeated, and refuses confirmed ones', async () => {
    const {rsv, inv, tick, now} = setup();
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['R-A1', 'R-A2']}));
    tick(1000);
    const cancelled = await rsv(
      'CancelReservation',
      cancelReq({reservation_id: created.reservation_id, reason: 'changed my mind'}),
    );
    expect(cancelled.status).toBe('RESERVATION_STATUS_CANCELLED');
    expect(ms(cancelled.cancelled_at)).toBe(now());
    expect(cancelled.released_seats.map((seat: Message) => [seat.id, seat.status])).toEqual([
      ['R-A1', 'SEAT_STATUS_AVAILABLE'],
      ['R-A2', 'SEAT_STATUS_AVAILABLE'],
    ]);
    expect((await inv('CheckAvailability', checkReq({event_id: CONCERT, seat_ids: ['R-A1', 'R-A2']}))).available).toBe(
      true,
    );
    expect((await rsv('GetReservation', getReq(created.reservation_id))).reservation.status).toBe(
      'RESERVATION_STATUS_CANCELLED',
    );

    tick(1000);
    expect(await rsv('CancelReservation', cancelReq({reservation_id: created.reservation_id}))).toEqual(cancelled);

    const sold = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    await rsv('ConfirmReservation', confirmReq({reservation_id: sold.reservation_id, payment_intent_id: 'pi'}));
    const refused = await failure(rsv('CancelReservation', cancelReq({reservation_id: sold.reservation_id})));
    expect(refused.code).toBe('FAILED_PRECONDITION');
    expect(refused.message).toMatch(/confirmed/);
    expect((await sectionCounts(inv, CONCERT, 'VIP')).sold_seats).toBe(1);
  });
});

describe('ListReservations', () => {
  it('filters by user, status and event, newest first', async () => {
    const {rsv, tick} = setup();
    const ids: string[] = [];
    for (const [eventId, userId] of [
      [CONCERT, 'u1'],
      [MUSICAL, 'u1'],
      [CONCERT, 'u2'],
      [CONCERT, 'u1'],
    ]) {
      ids.push(
        (await rsv('CreateReservation', createReq({event_id: eventId, quantity: 1, user_id: userId}))).reservation_id,
      );
      tick(10);
    }
    await rsv('CancelReservation', cancelReq({reservation_id: ids[3]}));
    const list = async (fields: Message) =>
      (await rsv('ListReservations', listReq(fields))).reservations.map(
        (reservation: Message) => reservation.reservation_id,
      );
    expect(await list({user_id: 'u1'})).toEqual([ids[3], ids[1], ids[0]]);
    expect(await list({user_id: 'u1', status: 'RESERVATION_STATUS_HOLD'})).toEqual([ids[1], ids[0]]);
    expect(await list({user_id: 'u1', event_id: CONCERT})).toEqual([ids[3], ids[0]]);
    expect(await list({status: 'RESERVATION_STATUS_CANCELLED'})).toEqual([ids[3]]);
    expect(await list({})).toEqual([...ids].reverse());
    // Requests without a pagination message (unset in proto-loader's objects) work too.
    expect(
      (
        await rsv('ListReservations', {
          user_id: 'u2',
          status: 'RESERVATION_STATUS_UNSPECIFIED',
          event_id: '',
          pagination: null,
        })
      ).reservations,
    ).toHaveLength(1);
  });

  it('pages by number (default 20, at most 100) and by cursor', async () => {
    const {rsv} = setup();
    const ids: string[] = [];
    for (let i = 0; i < 105; i++)
      ids.push(
        (await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1, user_id: 'u1'}))).reservation_id,
      );
    const newestFirst = [...ids].reverse();

    const first = await rsv('ListReservations', listReq({user_id: 'u1'}));
    expect(first.reservations.map((reservation: Message) => reservation.reservation_id)).toEqual(
      newestFirst.slice(0, 20),
    );
    expect(first.page_info).toMatchObject({
      total_count: 105,
      has_next_page: true,
      has_previous_page: false,
      previous_cursor: '',
    });
    const sixth = await rsv('ListReservations', listReq({user_id: 'u1'}, {page: 6}));
    expect(sixth.reservations.map((reservation: Message) => reservation.reservation_id)).toEqual(
      newestFirst.slice(100),
    );
    expect(sixth.page_info).toMatchObject({has_next_page: false, has_previous_page: true, next_cursor: ''});
    expect((await rsv('ListReservations', listReq({user_id: 'u1'}, {page_size: 1000}))).reservations).toHaveLength(100);
    expect((await rsv('ListReservations', listReq({user_id: 'u1'}, {page: 9}))).reservations).toEqual([]);

    // Walking next_cursor sees every reservation once, even when new ones arrive meanwhile.
    const seen: string[] = [];
    let page = await rsv('ListReservations', listReq({user_id: 'u1'}, {page_size: 30}));
    seen.push(...page.reservations.map((reservation: Message) => reservation.reservation_id));
    await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1, user_id: 'u1'}));
    while (page.page_info.has_next_page) {
      const previous = page;
      page = await rsv(
        'ListReservations',
        listReq({user_id: 'u1'}, {page_size: 30, cursor: page.page_info.next_cursor}),
      );
      seen.push(...page.reservations.map((reservation: Message) => reservation.reservation_id));
      // previous_cursor leads back to the page before.
      const back = await rsv(
        'ListReservations',
        listReq({user_id: 'u1'}, {page_size: 30, cursor: page.page_info.previous_cursor}),
      );
      expect(back.reservations.map((reservation: Message) => reservation.reservation_id)).toEqual(
        previous.reservations.map((reservation: Message) => reservation.reservation_id),
      );
    }
    expect(seen).toEqual(newestFirst);

    expect(await failure(rsv('ListReservations', listReq({}, {cursor: 'garbage'})))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'pagination.cursor',
    });
    expect(await failure(rsv('ListReservations', listReq({}, {page_size: -1})))).toMatchObject({
      field: 'pagination.page_size',
    });
  });
});

describe('ExtendHold', () => {
  it('pushes back the expiry of a hold, within 1-300 seconds', async () => {
    const {rsv, inv, tick} = setup({holdMs: 60_000});
    const created = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['S-B1']}));
    const extended = await rsv(
      'ExtendHold',
      extendReq({reservation_id: created.reservation_id, extension_seconds: 120}),
    );
    expect(extended).toMatchObject({extended_seconds: 120, extension_allowed: true});
    expect(ms(extended.new_expires_at)).toBe(ms(created.hold_expires_at) + 120_000);
    tick(170_000);
    expect((await sectionCounts(inv, CONCERT, 'S')).reserved_seats).toBe(1);
    expect((await rsv('GetReservation', getReq(created.reservation_id))).reservation.hold_expires_at).toEqual(
      extended.new_expires_at,
    );
    tick(10_000);
    expect((await rsv('GetReservation', getReq(created.reservation_id))).reservation.status).toBe(
      'RESERVATION_STATUS_EXPIRED',
    );

    const other = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    for (const seconds of [0, 301, -5]) {
      expect(
        await failure(rsv('ExtendHold', extendReq({reservation_id: other.reservation_id, extension_seconds: seconds}))),
      ).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'extension_seconds',
      });
    }
    await rsv('ConfirmReservation', confirmReq({reservation_id: other.reservation_id, payment_intent_id: 'pi'}));
    const confirmed = await failure(
      rsv('ExtendHold', extendReq({reservation_id: other.reservation_id, extension_seconds: 30})),
    );
    expect(confirmed.code).toBe('FAILED_PRECONDITION');
  });

  it('lets an extended hold lapse at its new time, not the old one', async () => {
    const {rsv, inv} = setup({holdMs: 300, realTime: true});
    const created = await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BOX-A1']}));
    const extended = await rsv(
      'ExtendHold',
      extendReq({reservation_id: created.reservation_id, extension_seconds: 1, idempotency_key: 'e1'}),
    );
    // A repeat with the same key does not extend again.
    expect(
      await rsv(
        'ExtendHold',
        extendReq({reservation_id: created.reservation_id, extension_seconds: 1, idempotency_key: 'e1'}),
      ),
    ).toEqual(extended);
    await sleep(600);
    expect((await sectionCounts(inv, MUSICAL, 'BOX')).reserved_seats).toBe(1);
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && (await sectionCounts(inv, MUSICAL, 'BOX')).available_seats === 0) await sleep(20);
    const freedAt = Date.now();
    expect(freedAt).toBeGreaterThanOrEqual(ms(extended.new_expires_at));
    expect(freedAt - ms(extended.new_expires_at)).toBeLessThan(300);
  });
});

describe('InventoryService', () => {
  it('checks availability by seats, by quantity and by section', async () => {
    const {rsv, inv} = setup();
    await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BALC-A1', 'BALC-A2']}));
    const balcony = await inv('CheckAvailability', checkReq({event_id: MUSICAL, section: 'BALC', quantity: 3}));
    expect(balcony).toMatchObject({available: true, remaining_in_section: 34, unavailable_seat_ids: []});
    expect(balcony.available_seats.map((seat: Message) => seat.id)).toEqual(['BALC-A3', 'BALC-A4', 'BALC-A5']);
    expect(balcony.available_seats[0]).toMatchObject({
      price: {amount: '90000', currency: 'KRW'},
      status: 'SEAT_STATUS_AVAILABLE',
    });
    expect(await inv('CheckAvailability', checkReq({event_id: MUSICAL, section: 'BALC', quantity: 35}))).toMatchObject({
      available: false,
      remaining_in_section: 34,
    });
    expect((await inv('CheckAvailability', checkReq({event_id: MUSICAL}))).remaining_in_section).toBe(95);

    const named = await inv('CheckAvailability', checkReq({event_id: MUSICAL, seat_ids: ['BALC-A2', 'BALC-A3']}));
    expect(named).toMatchObject({available: false, unavailable_seat_ids: ['BALC-A2']});
    expect(named.available_seats.map((seat: Message) => seat.id)).toEqual(['BALC-A3']);

    expect(await failure(inv('CheckAvailability', checkReq({event_id: MUSICAL, section: 'PIT'})))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await failure(inv('CheckAvailability', checkReq({event_id: 'evt_nope'})))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(
      await failure(inv('CheckAvailability', checkReq({event_id: MUSICAL, section: 'BALC', seat_ids: ['ORCH-A1']}))),
    ).toMatchObject({field: 'seat_ids'});
  });

  it('holds, commits and refuses to release sold seats', async () => {
    const {rsv, inv, now} = setup();
    const held = await inv(
      'ReserveSeat',
      reserveReq({reservation_id: 'ext-1', event_id: CONCERT, quantity: 2, user_id: 'u1'}),
    );
    expect(held.hold_id).toMatch(/^hold_\w+$/);
    expect(held.status).toBe('HOLD_STATUS_ACTIVE');
    expect(held.reserved_seats.map((seat: Message) => seat.id)).toEqual(['VIP-A1', 'VIP-A2']);
    expect(ms(held.hold_expires_at)).toBe(now() + 60_000);
    // The same seats, seen from ReservationService.
    expect((await failure(rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A1']})))).code).toBe(
      'INVENTORY_CONFLICT',
    );
    expect(
      (await failure(inv('ReserveSeat', reserveReq({reservation_id: 'ext-1', event_id: CONCERT, quantity: 1})))).code,
    ).toBe('FAILED_PRECONDITION');

    expect((await inv('CommitReservation', commitReq({reservation_id: 'ext-1'}))).status).toBe(
      'COMMIT_STATUS_FAILED_PAYMENT',
    );
    expect(
      (
        await inv(
          'CommitReservation',
          commitReq({reservation_id: 'ext-1', seat_ids: ['VIP-A9'], payment_intent_id: 'pi'}),
        )
      ).status,
    ).toBe('COMMIT_STATUS_FAILED_CONFLICT');
    const committed = await inv(
      'CommitReservation',
      commitReq({reservation_id: 'ext-1', event_id: CONCERT, payment_intent_id: 'pi', user_id: 'u1'}),
    );
    expect(committed).toMatchObject({status: 'COMMIT_STATUS_SUCCESS'});
    expect(committed.order_id).toMatch(/^ord_/);
    expect(committed.sold_seats.map((seat: Message) => [seat.id, seat.status])).toEqual([
      ['VIP-A1', 'SEAT_STATUS_SOLD'],
      ['VIP-A2', 'SEAT_STATUS_SOLD'],
    ]);
    expect(await sectionCounts(inv, CONCERT, 'VIP')).toMatchObject({sold_seats: 2, reserved_seats: 0});
    expect(
      (await failure(inv('CommitReservation', commitReq({reservation_id: 'ext-1', payment_intent_id: 'pi'})))).code,
    ).toBe('FAILED_PRECONDITION');
    expect((await failure(inv('ReleaseHold', releaseReq({reservation_id: 'ext-1'})))).code).toBe('FAILED_PRECONDITION');
    expect(
      (await failure(inv('CommitReservation', commitReq({reservation_id: 'ext-none', payment_intent_id: 'pi'})))).code,
    ).toBe('NOT_FOUND');
  });

  it('releases part of a hold, then the rest, then reports it released', async () => {
    const {inv} = setup();
    await inv(
      'ReserveSeat',
      reserveReq({reservation_id: 'ext-2', event_id: CONCERT, seat_ids: ['S-A1', 'S-A2', 'S-A3']}),
    );
    const part = await inv('ReleaseHold', releaseReq({reservation_id: 'ext-2', seat_ids: ['S-A2'], reason: 'changed'}));
    expect(part.status).toBe('RELEASE_STATUS_SUCCESS');
    expect(part.released_seats.map((seat: Message) => seat.id)).toEqual(['S-A2']);
    expect((await sectionCounts(inv, CONCERT, 'S')).reserved_seats).toBe(2);
    expect(await failure(inv('ReleaseHold', releaseReq({reservation_id: 'ext-2', seat_ids: ['S-A2']})))).toMatchObject({
      field: 'seat_ids',
    });

    const rest = await inv('ReleaseHold', releaseReq({reservation_id: 'ext-2'}));
    expect(rest.released_seats.map((seat: Message) => seat.id)).toEqual(['S-A1', 'S-A3']);
    expect((await sectionCounts(inv, CONCERT, 'S')).reserved_seats).toBe(0);
    expect((await inv('ReleaseHold', releaseReq({reservation_id: 'ext-2'}))).status).toBe(
      'RELEASE_STATUS_ALREADY_RELEASED',
    );
    expect((await inv('ReleaseHold', releaseReq({reservation_id: 'ext-unknown'}))).status).toBe(
      'RELEASE_STATUS_NOT_FOUND',
    );
    expect((await inv('CommitReservation', commitReq({reservation_id: 'ext-2', payment_intent_id: 'pi'}))).status).toBe(
      'COMMIT_STATUS_FAILED_CONFLICT',
    );
    // The reservation id may hold again once its hold is over.
    expect(
      (await inv('ReserveSeat', reserveReq({reservation_id: 'ext-2', event_id: CONCERT, quantity: 1}))).status,
    ).toBe('HOLD_STATUS_ACTIVE');
  });

  it('lets a ReserveSeat hold lapse at hold_expires_at, and repeats answers by idempotency_key', async () => {
    const {inv, tick, now} = setup();
    const request = reserveReq({
      reservation_id: 'ext-3',
      event_id: MUSICAL,
      seat_ids: ['BOX-A1'],
      hold_expires_at: {seconds: String((now() + 5000) / 1000), nanos: 0},
      idempotency_key: 'r-1',
    });
    const held = await inv('ReserveSeat', request);
    expect(ms(held.hold_expires_at)).toBe(now() + 5000);
    expect(await inv('ReserveSeat', request)).toEqual(held);
    expect((await failure(inv('ReserveSeat', {...request, seat_ids: ['ORCH-A1']}))).code).toBe('IDEMPOTENCY_CONFLICT');
    tick(5000);
    expect((await inv('CommitReservation', commitReq({reservation_id: 'ext-3', payment_intent_id: 'pi'}))).status).toBe(
      'COMMIT_STATUS_FAILED_EXPIRED',
    );
    expect((await inv('ReleaseHold', releaseReq({reservation_id: 'ext-3'}))).status).toBe(
      'RELEASE_STATUS_ALREADY_RELEASED',
    );
    expect((await sectionCounts(inv, MUSICAL, 'BOX')).available_seats).toBe(1);
    const past = reserveReq({
      reservation_id: 'ext-4',
      event_id: MUSICAL,
      quantity: 1,
      hold_expires_at: {seconds: String((now() - 1000) / 1000), nanos: 0},
    });
    expect(await failure(inv('ReserveSeat', past))).toMatchObject({field: 'hold_expires_at'});
  });

  it('keeps a ReservationService reservation in step when its hold is committed or released', async () => {
    const {rsv, inv} = setup();
    const a = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    const committed = await inv(
      'CommitReservation',
      commitReq({reservation_id: a.reservation_id, payment_intent_id: 'pi'}),
    );
    expect((await rsv('GetReservation', getReq(a.reservation_id))).reservation).toMatchObject({
      status: 'RESERVATION_STATUS_CONFIRMED',
      order_id: committed.order_id,
    });
    const b = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    await inv('ReleaseHold', releaseReq({reservation_id: b.reservation_id}));
    expect((await rsv('GetReservation', getReq(b.reservation_id))).reservation.status).toBe(
      'RESERVATION_STATUS_CANCELLED',
    );
    expect(
      (
        await failure(
          inv('ReserveSeat', reserveReq({reservation_id: b.reservation_id, event_id: CONCERT, quantity: 1})),
        )
      ).code,
    ).toBe('FAILED_PRECONDITION');
  });

  it('reports counts, prices and availability per section and in total', async () => {
    const {rsv, inv, now} = setup();
    const sold = await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['ORCH-A1', 'ORCH-A2']}));
    await rsv('ConfirmReservation', confirmReq({reservation_id: sold.reservation_id, payment_intent_id: 'pi'}));
    await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['ORCH-A3', 'BOX-A1']}));

    const status = await inv('GetInventoryStatus', {event_id: MUSICAL, section: ''});
    expect(status.event).toMatchObject({
      id: MUSICAL,
      total_seats: 97,
      remaining_seats: 93,
      venue: {name: 'Charlotte Theater', address: {country: 'KR'}},
    });
    expect(ms(status.event.start_time)).toBe(Date.parse('2027-01-15T19:30:00+09:00'));
    expect(
      status.sections.map((section: Message) => [
        section.section_id,
        section.total_seats,
        section.available_seats,
        section.reserved_seats,
        section.sold_seats,
      ]),
    ).toEqual([
      ['ORCH', 60, 57, 1, 2],
      ['BALC', 36, 36, 0, 0],
      ['BOX', 1, 0, 1, 0],
    ]);
    expect(status.sections[0]).toMatchObject({
      section_name: 'Orchestra',
      min_price: {amount: '170000', currency: 'KRW'},
      max_price: {amount: '170000', currency: 'KRW'},
    });
    expect(status.stats).toMatchObject({
      total_seats: 97,
      available_seats: 93,
      reserved_seats: 2,
      sold_seats: 2,
      blocked_seats: 0,
    });
    expect(status.stats.availability_percentage).toBeCloseTo((93 / 97) * 100, 1);
    expect(ms(status.stats.last_updated)).toBe(now());

    const box = await inv('GetInventoryStatus', {event_id: MUSICAL, section: 'BOX'});
    expect(box.sections).toHaveLength(1);
    expect(box.stats).toMatchObject({total_seats: 1, available_seats: 0, availability_percentage: 0});
    expect(await failure(inv('GetInventoryStatus', {event_id: 'evt_nope', section: ''}))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('retention', () => {
  const RETENTION = {finishedMs: 10_000, confirmedMs: 60_000, idempotencyTtlMs: 5000};

  it('forgets cancelled and expired reservations after finishedMs, confirmed ones after confirmedMs; forgotten ones are NOT_FOUND', async () => {
    const {rsv, inv, tick} = setup({holdMs: 600_000, retention: RETENTION});
    const expired = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1, user_id: 'u1'}));
    tick(600_000);
    const cancelled = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1, user_id: 'u1'}));
    await rsv('CancelReservation', cancelReq({reservation_id: cancelled.reservation_id}));
    const confirmed = await rsv(
      'CreateReservation',
      createReq({event_id: CONCERT, seat_ids: ['VIP-A1'], user_id: 'u1'}),
    );
    await rsv('ConfirmReservation', confirmReq({reservation_id: confirmed.reservation_id, payment_intent_id: 'pi'}));
    const held = await rsv('CreateReservation', createReq({event_id: CONCERT, seat_ids: ['VIP-A2'], user_id: 'u1'}));
    const status = async (id: string) => (await rsv('GetReservation', getReq(id))).reservation.status;
    expect(await status(expired.reservation_id)).toBe('RESERVATION_STATUS_EXPIRED');

    tick(9_999);
    expect(await status(cancelled.reservation_id)).toBe('RESERVATION_STATUS_CANCELLED');
    tick(1);
    for (const gone of [expired, cancelled]) {
      expect((await failure(rsv('GetReservation', getReq(gone.reservation_id)))).code).toBe('NOT_FOUND');
      expect(
        (
          await failure(
            rsv('ConfirmReservation', confirmReq({reservation_id: gone.reservation_id, payment_intent_id: 'pi'})),
          )
        ).code,
      ).toBe('NOT_FOUND');
      expect((await inv('ReleaseHold', releaseReq({reservation_id: gone.reservation_id}))).status).toBe(
        'RELEASE_STATUS_NOT_FOUND',
      );
    }
    expect(await status(confirmed.reservation_id)).toBe('RESERVATION_STATUS_CONFIRMED');
    expect(await status(held.reservation_id)).toBe('RESERVATION_STATUS_HOLD');
    const listed = await rsv('ListReservations', listReq({user_id: 'u1'}));
    expect(listed.reservations.map((reservation: Message) => reservation.reservation_id)).toEqual([
      held.reservation_id,
      confirmed.reservation_id,
    ]);

    tick(50_000);
    expect((await failure(rsv('GetReservation', getReq(confirmed.reservation_id)))).code).toBe('NOT_FOUND');
    // The sale stands: forgetting the record does not give the seat back.
    expect((await sectionCounts(inv, CONCERT, 'VIP')).sold_seats).toBe(1);
    // An active hold is never forgotten, however long it is kept waiting.
    expect(await status(held.reservation_id)).toBe('RESERVATION_STATUS_HOLD');
    expect((await sectionCounts(inv, CONCERT, 'VIP')).reserved_seats).toBe(1);
    expect(
      (await rsv('ConfirmReservation', confirmReq({reservation_id: held.reservation_id, payment_intent_id: 'pi'})))
        .status,
    ).toBe('RESERVATION_STATUS_CONFIRMED');
  });

  it('keeps the active hold of a reservation id that held before, when the old hold is forgotten', async () => {
    const {inv, tick} = setup({retention: RETENTION});
    await inv('ReserveSeat', reserveReq({reservation_id: 'ext-r', event_id: CONCERT, quantity: 1}));
    await inv('ReleaseHold', releaseReq({reservation_id: 'ext-r'}));
    tick(5000);
    const again = await inv(
      'ReserveSeat',
      reserveReq({reservation_id: 'ext-r', event_id: CONCERT, seat_ids: ['R-A1']}),
    );
    expect(again.status).toBe('HOLD_STATUS_ACTIVE');
    // The first hold's retention ends here; the second hold is active and stays.
    tick(5000);
    expect((await inv('CommitReservation', commitReq({reservation_id: 'ext-r', payment_intent_id: 'pi'}))).status).toBe(
      'COMMIT_STATUS_SUCCESS',
    );
    tick(RETENTION.confirmedMs);
    expect(
      (await failure(inv('CommitReservation', commitReq({reservation_id: 'ext-r', payment_intent_id: 'pi'})))).code,
    ).toBe('NOT_FOUND');
  });

  it("repeats an idempotency_key's answer for idempotencyTtlMs only; then the key is new again", async () => {
    const {rsv, tick} = setup({retention: RETENTION});
    const request = createReq({event_id: CONCERT, quantity: 1, user_id: 'u1', idempotency_key: 'k-1'});
    const first = await rsv('CreateReservation', request);
    tick(4_999);
    expect(await rsv('CreateReservation', request)).toEqual(first);
    expect((await failure(rsv('CreateReservation', {...request, quantity: 2}))).code).toBe('IDEMPOTENCY_CONFLICT');
    tick(1);
    const second = await rsv('CreateReservation', request);
    expect(second.reservation_id).not.toBe(first.reservation_id);
    // Another request under the expired key is no conflict either.
    tick(5000);
    expect((await rsv('CreateReservation', {...request, quantity: 2})).reserved_seats).toHaveLength(2);
  });

  it('stays bounded under steady traffic: 1,000 reservations made and cancelled, about a retention window listed', async () => {
    const {rsv, tick} = setup({retention: RETENTION});
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 20; i++) {
        const created = await rsv(
          'CreateReservation',
          createReq({event_id: CONCERT, quantity: 1, user_id: 'busy', idempotency_key: `k-${round}-${i}`}),
        );
        await rsv(
          'CancelReservation',
          cancelReq({reservation_id: created.reservation_id, idempotency_key: `c-${round}-${i}`}),
        );
      }
      tick(1000);
    }
    const listed = await rsv('ListReservations', listReq({user_id: 'busy'}));
    // 10 s of retention at 20 a second: 200 or so of the 1,000.
    expect(listed.page_info.total_count).toBeLessThanOrEqual(220);
    expect(listed.page_info.total_count).toBeGreaterThanOrEqual(180);
  });

  it('refuses a retention that is not a positive number of milliseconds', () => {
    expect(() => createReservationMock({catalog, holdMs: 1000, retention: {finishedMs: 0}})).toThrow(/finishedMs/);
  });
});

describe('hold timer', () => {
  it('expires each of several holds on its own time without anyone looking, an extended one at its new time', async () => {
    const {rsv} = setup({holdMs: 300, realTime: true});
    const extendedOne = await rsv('CreateReservation', createReq({event_id: MUSICAL, seat_ids: ['BOX-A1']}));
    const extended = await rsv(
      'ExtendHold',
      extendReq({reservation_id: extendedOne.reservation_id, extension_seconds: 1}),
    );
    const plain = await rsv('CreateReservation', createReq({event_id: CONCERT, quantity: 1}));
    await sleep(1700);
    // updated_at is when each hold expired: by the timer, not when read here.
    for (const [id, expiresAt] of [
      [plain.reservation_id, ms(plain.hold_expires_at)],
      [extendedOne.reservation_id, ms(extended.new_expires_at)],
    ] as const) {
      const {reservation} = await rsv('GetReservation', getReq(id));
      expect(reservation.status).toBe('RESERVATION_STATUS_EXPIRED');
      expect(ms(reservation.updated_at)).toBeGreaterThanOrEqual(expiresAt);
      expect(ms(reservation.updated_at) - expiresAt).toBeLessThan(250);
    }
  });
});
