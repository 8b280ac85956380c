import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError} from '../../errors.js';
import {newId} from '../message-fields.js';
import {DEFAULT_RETENTION, DueQueue, PRUNE_BATCH, type Retention} from '../retention.js';
import {type Catalog, type CatalogEvent, type CatalogSection, type SeatInfo, seatsOfSection} from '../../catalog.js';

export type SeatStatus = 'SEAT_STATUS_AVAILABLE' | 'SEAT_STATUS_RESERVED' | 'SEAT_STATUS_SOLD';
export type HoldStatus =
  'HOLD_STATUS_ACTIVE' | 'HOLD_STATUS_EXPIRED' | 'HOLD_STATUS_RELEASED' | 'HOLD_STATUS_COMMITTED';
export type ReservationStatus =
  | 'RESERVATION_STATUS_HOLD'
  | 'RESERVATION_STATUS_CONFIRMED'
  | 'RESERVATION_STATUS_CANCELLED'
  | 'RESERVATION_STATUS_EXPIRED';

export interface SeatRecord {
  info: SeatInfo;
  status: SeatStatus;
  /** The hold that has the seat, while RESERVED or SOLD. */
  holdId: string;
}

export interface EventRecord {
  event: CatalogEvent;
  /** In catalogue order: the order in which seats are picked for a quantity. */
  seats: SeatRecord[];
  byId: Map<string, SeatRecord>;
}

/** A claim on seats (the inventory's view); a reservation owns one, or a client of ReserveSeat does. */
export interface Hold {
  id: string;
  reservationId: string;
  eventId: string;
  userId: string;
  /** The seats claimed; kept after the hold ends so a finished reservation still shows its seats. */
  seatIds: string[];
  expiresAt: number;
  status: HoldStatus;
  orderId: string;
  /** Set when the hold belongs to a ReservationService reservation. */
  reservation?: ReservationRecord;
}

export interface ReservationRecord {
  id: string;
  /** Creation order, for newest-first listing and stable cursors. */
  seq: number;
  eventId: string;
  userId: string;
  status: ReservationStatus;
  hold: Hold;
  createdAt: number;
  updatedAt: number;
  paymentIntentId: string;
  orderId: string;
  metadata: object | null;
  confirmedAt: number;
  cancelledAt: number;
}

// setTimeout fires at once for delays above 2^31-1 ms; a longer wait re-arms when it fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Seats, holds and reservations of the mock, all in memory; every change is synchronous, so calls
 * cannot interleave.
 *
 * Holds expire on time by one timer, armed for the earliest deadline of a heap of them; a call that
 * looks at the state first settles the holds whose time has come (settleDue: O(1) when none has),
 * so an injected clock that runs ahead of the timer is honoured too.
 *
 * Retention: a finished hold (expired or released, with its cancelled or expired reservation) is
 * forgotten `retention.finishedMs` after it ended, a committed one (a confirmed reservation)
 * `retention.confirmedMs` after; an idempotency_key's answer after `retention.idempotencyTtlMs`.
 * A forgotten reservation is answered as if it never existed: NOT_FOUND (ReleaseHold:
 * RELEASE_STATUS_NOT_FOUND). Active holds are never forgotten. Pruning is lazy: prune() runs at
 * the start of every call (see reservation-mock.ts) and removes what fell due, a batch at a time.
 */
export class ReservationState {
  readonly events = new Map<string, EventRecord>();
  readonly reservations = new Map<string, ReservationRecord>();
  readonly holdsByReservation = new Map<string, Hold>();
  private readonly active = new Set<Hold>();
  /** In the order stored, which is the order they expire in (one TTL for all). */
  private readonly answers = new Map<string, {fingerprint: string; response: object; storedAt: number}>();
  /** Deadlines of active holds; an entry whose hold ended or moved its deadline is stale and skipped. */
  private readonly deadlines = new MinHeap<{at: number; hold: Hold}>((a, b) => a.at - b.at);
  private readonly finished: DueQueue<Hold>;
  private readonly confirmed: DueQueue<Hold>;
  private timer?: NodeJS.Timeout;
  private timerAt = Number.POSITIVE_INFINITY;
  private seq = 0;
  private closed = false;

  constructor(
    catalog: Catalog,
    readonly holdMs: number,
    readonly now: () => number,
    readonly retention: Retention = DEFAULT_RETENTION,
    /** Told of every status a reservation takes (held, confirmed, cancelled, expired), after it took it. */
    private readonly onChange: (reservation: ReservationRecord, oldStatus: string) => void = () => undefined,
  ) {
    for (const event of catalog.events) {
      const seats = event.sections
        .flatMap((section) => seatsOfSection(section))
        .map((info): SeatRecord => ({info, status: 'SEAT_STATUS_AVAILABLE', holdId: ''}));
      this.events.set(event.id, {event, seats, byId: new Map(seats.map((seat) => [seat.info.id, seat]))});
    }
    this.finished = new DueQueue(retention.finishedMs);
    this.confirmed = new DueQueue(retention.confirmedMs);
  }

  event(eventId: string): EventRecord {
    if (!eventId) throw invalidArgument('event_id', 'event_id is required.');
    const record = this.events.get(eventId);
    if (!record) throw new TacosError(`No event "${eventId}" in the catalogue.`, {code: 'NOT_FOUND'});
    return record;
  }

  section(record: EventRecord, sectionId: string): CatalogSection {
    const section = record.event.sections.find((candidate) => candidate.id === sectionId);
    if (!section)
      throw new TacosError(`Event "${record.event.id}" has no section "${sectionId}".`, {code: 'NOT_FOUND'});
    return section;
  }

  /**
   * Refuses an order for more seats than its event allows (the catalogue's max_seats_per_order),
   * before anything looks at the seats. An unknown event is refused later, by event().
   */
  checkOrderSize(eventId: string, seatCount: number, quantity: number): void {
    const max = this.events.get(eventId)?.event.max_seats_per_order;
    if (max === undefined || (seatCount <= max && quantity <= max)) return;
    const [field, count] = seatCount > max ? ['seat_ids', seatCount] : ['quantity', quantity];
    throw new TacosError(`Event "${eventId}" sells at most ${max} seats per order (${field} asks for ${count}).`, {
      code: 'TOO_MANY_SEATS',
      field,
    });
  }

  /** Named seats that must exist (INVALID_ARGUMENT naming seat_ids otherwise), in the order given. */
  namedSeats(record: EventRecord, seatIds: string[], sectionId = ''): SeatRecord[] {
    const seen = new Set<string>();
    const duplicate = seatIds.find((id) => {
      if (seen.has(id)) return true;
      seen.add(id);
      return false;
    });
    if (duplicate) throw invalidArgument('seat_ids', `seat_ids names the seat "${duplicate}" twice.`);
    const unknown = seatIds.filter((id) => {
      const seat = record.byId.get(id);
      return !seat || (sectionId !== '' && seat.info.sectionId !== sectionId);
    });
    if (unknown.length > 0) {
      const where = sectionId ? `section "${sectionId}" of event "${record.event.id}"` : `event "${record.event.id}"`;
      throw invalidArgument('seat_ids', `seat_ids names seats that ${where} does not have: ${unknown.join(', ')}.`);
    }
    return seatIds.map((id) => record.byId.get(id)!);
  }

  /** The seats a hold asks for: named ones (all available) or the first `quantity` available ones. */
  pickSeats(record: EventRecord, seatIds: string[], quantity: number): SeatRecord[] {
    if (!Number.isInteger(quantity) || quantity < 0)
      throw invalidArgument('quantity', `quantity must be a whole number of seats, 0 or more (got ${quantity}).`);
    if (seatIds.length > 0) {
      if (quantity !== 0 && quantity !== seatIds.length) {
        throw invalidArgument(
          'quantity',
          `quantity (${quantity}) must equal the number of seat_ids (${seatIds.length}), or be 0.`,
        );
      }
      const seats = this.namedSeats(record, seatIds);
      const taken = seats.filter((seat) => seat.status !== 'SEAT_STATUS_AVAILABLE').map((seat) => seat.info.id);
      if (taken.length > 0)
        throw new TacosError(`These seats are no longer available: ${taken.join(', ')}.`, {code: 'INVENTORY_CONFLICT'});
      return seats;
    }
    if (quantity === 0) throw invalidArgument('quantity', 'Name seats in seat_ids or ask for a quantity above 0.');
    const free = record.seats.filter((seat) => seat.status === 'SEAT_STATUS_AVAILABLE');
    if (free.length < quantity) {
      throw new TacosError(
        `Only ${free.length} seat(s) of event "${record.event.id}" are available; ${quantity} were asked for.`,
        {code: 'INSUFFICIENT_INVENTORY'},
      );
    }
    return free.slice(0, quantity);
  }

  /** Holds `seats` until `expiresAt`; the timer gives them back then even if nobody looks. */
  hold(seats: SeatRecord[], owner: {reservationId: string; eventId: string; userId: string; expiresAt: number}): Hold {
    const hold: Hold = {
      ...owner,
      id: newId('hold'),
      seatIds: seats.map((seat) => seat.info.id),
      status: 'HOLD_STATUS_ACTIVE',
      orderId: '',
    };
    for (const seat of seats) {
      seat.status = 'SEAT_STATUS_RESERVED';
      seat.holdId = hold.id;
    }
    this.holdsByReservation.set(hold.reservationId, hold);
    this.active.add(hold);
    this.schedule(hold);
    return hold;
  }

  newReservation(hold: Hold, fields: {userId: string; metadata: object | null}): ReservationRecord {
    const now = this.now();
    const reservation: ReservationRecord = {
      id: hold.reservationId,
      seq: ++this.seq,
      eventId: hold.eventId,
      userId: fields.userId,
      status: 'RESERVATION_STATUS_HOLD',
      hold,
      createdAt: now,
      updatedAt: now,
      paymentIntentId: '',
      orderId: '',
      metadata: fields.metadata,
      confirmedAt: 0,
      cancelledAt: 0,
    };
    hold.reservation = reservation;
    this.reservations.set(reservation.id, reservation);
    this.onChange(reservation, 'RESERVATION_STATUS_UNSPECIFIED');
    return reservation;
  }

  /** A reservation id no reservation or hold uses yet. */
  freshReservationId(): string {
    let id: string;
    do id = newId('rsv');
    while (this.holdsByReservation.has(id) || this.reservations.has(id));
    return id;
  }

  /** Expires `hold` if its time has come: the timer may lag, and an injected clock may run ahead of it. */
  settle(hold: Hold): void {
    if (hold.status === 'HOLD_STATUS_ACTIVE' && this.now() >= hold.expiresAt) this.end(hold, 'HOLD_STATUS_EXPIRED');
  }

  /** Expires every hold whose time has come, earliest first; O(1) when none has. */
  settleDue(): void {
    const now = this.now();
    for (let top = this.deadlines.peek(); top && top.at <= now; top = this.deadlines.peek()) {
      this.deadlines.pop();
      if (top.hold.status === 'HOLD_STATUS_ACTIVE' && top.hold.expiresAt === top.at)
        this.end(top.hold, 'HOLD_STATUS_EXPIRED');
    }
  }

  /** Forgets idempotency answers past their TTL and finished holds past their retention (never an active hold). */
  prune(): void {
    const now = this.now();
    let removed = 0;
    for (const [slot, answer] of this.answers) {
      if (answer.storedAt + this.retention.idempotencyTtlMs > now || removed >= PRUNE_BATCH) break;
      this.answers.delete(slot);
      removed++;
    }
    for (const queue of [this.finished, this.confirmed]) {
      for (const hold of queue.takeDue(now)) this.forget(hold);
    }
  }

  extend(hold: Hold, ms: number): void {
    hold.expiresAt += ms;
    this.schedule(hold);
  }

  /** Sells the held seats; returns the order id. */
  commit(hold: Hold, paymentIntentId: string): string {
    const orderId = newId('ord');
    for (const id of hold.seatIds) this.seat(hold, id).status = 'SEAT_STATUS_SOLD';
    hold.orderId = orderId;
    this.end(hold, 'HOLD_STATUS_COMMITTED');
    const reservation = hold.reservation;
    if (reservation) {
      const oldStatus = reservation.status;
      reservation.status = 'RESERVATION_STATUS_CONFIRMED';
      reservation.orderId = orderId;
      reservation.paymentIntentId = paymentIntentId || reservation.paymentIntentId;
      reservation.confirmedAt = reservation.updatedAt;
      this.onChange(reservation, oldStatus);
    }
    return orderId;
  }

  /** Gives back some (or all) held seats; the hold ends when none are left. */
  release(hold: Hold, seatIds: string[]): void {
    for (const id of seatIds) this.free(hold, id);
    if (seatIds.length === hold.seatIds.length) {
      this.end(hold, 'HOLD_STATUS_RELEASED');
    } else {
      hold.seatIds = hold.seatIds.filter((id) => !seatIds.includes(id));
      if (hold.reservation) hold.reservation.updatedAt = this.now();
    }
  }

  /**
   * Runs `compute` once per idempotency key of a method: a repeat with the same request gets the
   * first answer again, a repeat with another request IDEMPOTENCY_CONFLICT. Errors are not kept, so
   * a failed call can be retried with its key. An answer is kept for retention.idempotencyTtlMs.
   */
  idempotent<T extends object>(method: string, key: string, request: object, compute: () => T): T {
    if (!key) return compute();
    const fingerprint = stableJson(request);
    const slot = `${method}\u0000${key}`;
    const now = this.now();
    let earlier = this.answers.get(slot);
    if (earlier && earlier.storedAt + this.retention.idempotencyTtlMs <= now) {
      // Past its TTL the key is new again.
      this.answers.delete(slot);
      earlier = undefined;
    }
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) {
        throw new TacosError(`The idempotency_key "${key}" was already used for a different ${method} request.`, {
          code: 'IDEMPOTENCY_CONFLICT',
          hint: 'Use a new idempotency_key for a different request.',
        });
      }
      return structuredClone(earlier.response) as T;
    }
    const response = compute();
    this.answers.set(slot, {fingerprint, response: structuredClone(response), storedAt: now});
    return response;
  }

  /** Stops the expiry timer; holds still expire when touched. Safe twice. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Notes the hold's (new) deadline and makes sure the timer fires by then. */
  private schedule(hold: Hold): void {
    this.deadlines.push({at: hold.expiresAt, hold});
    // Stale entries (extended or ended holds) go when they come up; rebuild if they pile up.
    if (this.deadlines.size > 2 * this.active.size + 1024) {
      this.deadlines.replace([...this.active].map((active) => ({at: active.expiresAt, hold: active})));
    }
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    const next = this.deadlines.peek();
    if (!next || (this.timer && this.timerAt <= next.at)) return;
    clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.settleDue();
        this.arm();
      },
      Math.min(Math.max(next.at - this.now(), 0), MAX_TIMER_MS),
    );
    // An idle mock must not keep the process alive for a pending hold.
    this.timer.unref();
  }

  /** Drops a finished hold, and its reservation, from the maps; a newer hold of the same reservation id stays. */
  private forget(hold: Hold): void {
    if (hold.status === 'HOLD_STATUS_ACTIVE') return;
    if (this.holdsByReservation.get(hold.reservationId) === hold) this.holdsByReservation.delete(hold.reservationId);
    const reservation = hold.reservation;
    if (reservation && this.reservations.get(reservation.id) === reservation) this.reservations.delete(reservation.id);
  }

  private end(hold: Hold, status: Exclude<HoldStatus, 'HOLD_STATUS_ACTIVE'>): void {
    this.active.delete(hold);
    (status === 'HOLD_STATUS_COMMITTED' ? this.confirmed : this.finished).add(hold, this.now());
    if (status === 'HOLD_STATUS_EXPIRED' || status === 'HOLD_STATUS_RELEASED') {
      for (const id of hold.seatIds) this.free(hold, id);
    }
    hold.status = status;
    const reservation = hold.reservation;
    if (!reservation) return;
    reservation.updatedAt = this.now();
    const oldStatus = reservation.status;
    if (status === 'HOLD_STATUS_EXPIRED') reservation.status = 'RESERVATION_STATUS_EXPIRED';
    if (status === 'HOLD_STATUS_RELEASED') {
      reservation.status = 'RESERVATION_STATUS_CANCELLED';
      reservation.cancelledAt = reservation.updatedAt;
    }
    if (reservation.status !== oldStatus) this.onChange(reservation, oldStatus);
  }

  private seat(hold: Hold, id: string): SeatRecord {
    return this.events.get(hold.eventId)!.byId.get(id)!;
  }

  private free(hold: Hold, id: string): void {
    const seat = this.seat(hold, id);
    // Only this hold's own claim is given back, never a seat another hold has taken since.
    if (seat.holdId !== hold.id || seat.status !== 'SEAT_STATUS_RESERVED') return;
    seat.status = 'SEAT_STATUS_AVAILABLE';
    seat.holdId = '';
  }
}

/** JSON with sorted keys, so two equal requests compare equal whatever their field order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(
          Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : inner,
  );
}

/** A binary min-heap. */
class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const {items} = this;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (this.before(items[index], items[parent]) >= 0) break;
      [items[index], items[parent]] = [items[parent], items[index]];
      index = parent;
    }
  }

  pop(): T | undefined {
    const {items} = this;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.down(0);
    }
    return top;
  }

  /** Replaces the contents with `items`. */
  replace(items: T[]): void {
    this.items = items;
    for (let index = (items.length >> 1) - 1; index >= 0; index--) this.down(index);
  }

  private down(start: number): void {
    const {items} = this;
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < items.length && this.before(items[left], items[smallest]) < 0) smallest = left;
      if (right < items.length && this.before(items[right], items[smallest]) < 0) smallest = right;
      if (smallest === index) return;
      [items[index], items[smallest]] = [items[smallest], items[index]];
      index = smallest;
    }
  }
}
