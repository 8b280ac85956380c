import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {TacosError, errorMessage} from './errors.js';
import {PACKAGE_ROOT} from './paths.js';

/*
 * On the floor: the reservation mock serves the catalogue's events, and the gateway's queue takes joins for them.
 *
 * Catalogue format (JSON): {"events": [Event, ...]}
 *   Event:   {id, name, description?, venue, start_time, end_time, sale_start_time, sale_end_time, sections,
 *            max_seats_per_order?}
 *            times are RFC 3339 ("2026-12-24T19:00:00+09:00"); end after start, sale end after sale start.
 *            max_seats_per_order (1-100, default 10): the most seats one reservation or hold may take.
 *   Venue:   {id, name, address: {street, city, state?, postal_code?, country}, total_capacity}
 *            total_capacity must be at least the event's seat count.
 *   Section: {id, name, rows (1-26), seats_per_row (1-100), price: {amount, currency}}
 *            or {id, name, row_seats: [seats of row 1, of row 2, ...] (0-100 each; 0 = an aisle row), price}
 *            amount is a whole number in the currency's minor unit; one currency per event.
 * Seats are not listed: section S with rows R and seats_per_row N has the seats S-A1 .. S-<R-th letter><N>;
 * with row_seats, rows are numbered from 1 and seats are S-<row>-<n> (VIP-3-12), as the web client draws them.
 * Unknown fields are refused, so a misspelt field name is reported instead of silently ignored.
 */

export interface CatalogMoney {
  amount: number;
  currency: string;
}

export interface CatalogAddress {
  street: string;
  city: string;
  state: string;
  postal_code: string;
  country: string;
}

export interface CatalogVenue {
  id: string;
  name: string;
  address: CatalogAddress;
  total_capacity: number;
}

export interface CatalogSection {
  id: string;
  name: string;
  rows: number;
  seats_per_row: number;
  /** Seats of each row (row 1 first), when rows differ; rows are then numbered, not lettered. */
  row_seats?: number[];
  price: CatalogMoney;
}

export interface CatalogEvent {
  id: string;
  name: string;
  description: string;
  venue: CatalogVenue;
  start_time: string;
  end_time: string;
  sale_start_time: string;
  sale_end_time: string;
  sections: CatalogSection[];
  /** The most seats one reservation (or inventory hold) of this event may take. */
  max_seats_per_order: number;
}

export interface Catalog {
  events: CatalogEvent[];
}

/** One seat as the catalogue defines it. */
export interface SeatInfo {
  id: string;
  sectionId: string;
  row: string;
  number: string;
  price: CatalogMoney;
}

export const DEFAULT_CATALOG_FILE = path.join(PACKAGE_ROOT, 'mocks', 'catalog.json');

/** Seats one order may take when the event does not say (the gateway's BOOKING_MAX_SEATS_PER_ORDER default too). */
export const DEFAULT_MAX_SEATS_PER_ORDER = 10;
const MAX_SEATS_PER_ORDER = 100;
const ROW_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const MAX_SEATS_PER_ROW = 100;
const MAX_ROWS = 100;
const MAX_AMOUNT = 1_000_000_000_000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const SECTION_ID = /^[A-Za-z0-9_-]{1,32}$/;
const HINT = 'Fix the file, or pass --catalog with another one. The format is described in the README (mock backends).';

/** The seats of a section, in order: row A (or 1) seat 1, 2, ..., then row B (or 2)... */
export function seatsOfSection(section: CatalogSection): SeatInfo[] {
  const seats: SeatInfo[] = [];
  for (let row = 0; row < section.rows; row++) {
    const count = section.row_seats ? section.row_seats[row] : section.seats_per_row;
    for (let number = 1; number <= count; number++) {
      const id = section.row_seats
        ? `${section.id}-${row + 1}-${number}`
        : `${section.id}-${ROW_LETTERS[row]}${number}`;
      seats.push({
        id,
        sectionId: section.id,
        row: section.row_seats ? String(row + 1) : ROW_LETTERS[row],
        number: String(number),
        price: section.price,
      });
    }
  }
  return seats;
}

function seatCount(section: CatalogSection): number {
  return section.row_seats
    ? section.row_seats.reduce((sum, count) => sum + count, 0)
    : section.rows * section.seats_per_row;
}

/** Reads and checks a catalogue file (the one in the package by default). */
export async function loadCatalog(file: string = DEFAULT_CATALOG_FILE): Promise<Catalog> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TacosError(
      missing ? `The catalogue ${file} does not exist.` : `Cannot read the catalogue ${file}: ${errorMessage(error)}`,
      {
        code: 'CATALOG_UNREADABLE',
        hint: missing
          ? 'Check the path given to --catalog; without it the catalogue shipped in mocks/catalog.json is used.'
          : HINT,
        cause: error,
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TacosError(`The catalogue ${file} is not JSON: ${errorMessage(error)}`, {
      code: 'CATALOG_INVALID',
      hint: HINT,
      cause: error,
    });
  }
  return parseCatalog(value, file);
}

/** Checks a catalogue already parsed from JSON; errors name the event and field at fault. */
export function parseCatalog(value: unknown, source = 'catalogue'): Catalog {
  const fail = (where: string, problem: string): never => {
    throw new TacosError(`The catalogue ${source} is not valid: ${where.replace(/[:\s]+$/, '')} ${problem}.`, {
      code: 'CATALOG_INVALID',
      hint: HINT,
    });
  };
  const root = object(value, 'the top level', ['events'], [], fail);
  if (!Array.isArray(root.events)) fail('"events"', 'must be a list of events');
  const events = root.events as unknown[];
  if (events.length === 0) fail('"events"', 'must hold at least one event');
  const ids = new Set<string>();
  const parsed = events.map((raw, index) => {
    // Name the event by its id once it has one, so a broken field is easy to find.
    const rawId =
      raw && typeof raw === 'object' && typeof (raw as {id?: unknown}).id === 'string' ? (raw as {id: string}).id : '';
    const at = rawId ? `event "${rawId}" (events[${index}]): ` : `events[${index}]: `;
    const event = parseEvent(raw, at, fail);
    if (ids.has(event.id)) fail(at, `repeats the event id "${event.id}"`);
    ids.add(event.id);
    return event;
  });
  return {events: parsed};
}

type Fail = (where: string, problem: string) => never;

/** A field's place: `event "x" (events[0]): ` + `sections[1]` + `.price`... */
function join(at: string, key: string): string {
  return at.endsWith(': ') ? at + key : `${at}.${key}`;
}
type Fields = Record<string, unknown>;

function parseEvent(raw: unknown, at: string, fail: Fail): CatalogEvent {
  const event = object(
    raw,
    at,
    ['id', 'name', 'venue', 'start_time', 'end_time', 'sale_start_time', 'sale_end_time', 'sections'],
    ['description', 'max_seats_per_order'],
    fail,
  );
  const id = text(event, 'id', at, fail, EVENT_ID, 'letters, digits and _ . : - (at most 128)');
  const times = {
    start_time: time(event, 'start_time', at, fail),
    end_time: time(event, 'end_time', at, fail),
    sale_start_time: time(event, 'sale_start_time', at, fail),
    sale_end_time: time(event, 'sale_end_time', at, fail),
  };
  if (Date.parse(times.end_time) <= Date.parse(times.start_time))
    fail(join(at, 'end_time'), 'must be after start_time');
  if (Date.parse(times.sale_end_time) <= Date.parse(times.sale_start_time))
    fail(join(at, 'sale_end_time'), 'must be after sale_start_time');

  if (!Array.isArray(event.sections) || event.sections.length === 0)
    fail(join(at, 'sections'), 'must be a non-empty list of sections');
  const sectionIds = new Set<string>();
  const sections = (event.sections as unknown[]).map((rawSection, index) => {
    const section = parseSection(rawSection, join(at, `sections[${index}]`), fail);
    if (sectionIds.has(section.id)) fail(join(at, `sections[${index}].id`), `repeats the section id "${section.id}"`);
    sectionIds.add(section.id);
    return section;
  });
  // A reservation's total is one Money, so its seats must share a currency.
  const currency = sections[0].price.currency;
  const other = sections.findIndex((section) => section.price.currency !== currency);
  if (other >= 0)
    fail(
      join(at, `sections[${other}].price.currency`),
      `is ${sections[other].price.currency}, but the event's first section is priced in ${currency} (one currency per event)`,
    );

  const venue = parseVenue(event.venue, join(at, 'venue'), fail);
  const seats = sections.reduce((sum, section) => sum + seatCount(section), 0);
  if (venue.total_capacity < seats)
    fail(join(at, 'venue.total_capacity'), `is ${venue.total_capacity}, fewer than the ${seats} seats of the sections`);

  return {
    id,
    name: text(event, 'name', at, fail),
    description: optionalText(event, 'description', at, fail),
    venue,
    ...times,
    sections,
    max_seats_per_order:
      event.max_seats_per_order === undefined
        ? DEFAULT_MAX_SEATS_PER_ORDER
        : integer(event, 'max_seats_per_order', at, fail, 1, MAX_SEATS_PER_ORDER),
  };
}

function parseVenue(raw: unknown, at: string, fail: Fail): CatalogVenue {
  const venue = object(raw, at, ['id', 'name', 'address', 'total_capacity'], [], fail);
  const addressAt = join(at, 'address');
  const address = object(venue.address, addressAt, ['street', 'city', 'country'], ['state', 'postal_code'], fail);
  return {
    id: text(venue, 'id', at, fail),
    name: text(venue, 'name', at, fail),
    address: {
      street: text(address, 'street', addressAt, fail),
      city: text(address, 'city', addressAt, fail),
      state: optionalText(address, 'state', addressAt, fail),
      postal_code: optionalText(address, 'postal_code', addressAt, fail),
      country: text(address, 'country', addressAt, fail, /^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as "KR"'),
    },
    total_capacity: integer(venue, 'total_capacity', at, fail, 1, 10_000_000),
  };
}

function parseSection(raw: unknown, at: string, fail: Fail): CatalogSection {
  const byRow = raw !== null && typeof raw === 'object' && 'row_seats' in raw;
  const section = object(
    raw,
    at,
    byRow ? ['id', 'name', 'row_seats', 'price'] : ['id', 'name', 'rows', 'seats_per_row', 'price'],
    [],
    fail,
  );
  const priceAt = join(at, 'price');
  const price = object(section.price, priceAt, ['amount', 'currency'], [], fail);
  const layout = byRow ? rowSeats(section.row_seats, join(at, 'row_seats'), fail) : undefined;
  return {
    id: text(section, 'id', at, fail, SECTION_ID, 'letters, digits, _ and - (at most 32)'),
    name: text(section, 'name', at, fail),
    rows: layout ? layout.length : integer(section, 'rows', at, fail, 1, ROW_LETTERS.length),
    seats_per_row: layout ? Math.max(...layout) : integer(section, 'seats_per_row', at, fail, 1, MAX_SEATS_PER_ROW),
    ...(layout ? {row_seats: layout} : {}),
    price: {
      amount: integer(price, 'amount', priceAt, fail, 0, MAX_AMOUNT, 'a whole number of minor units (e.g. cents)'),
      currency: text(price, 'currency', priceAt, fail, /^[A-Z]{3}$/, 'an ISO 4217 code such as "KRW"'),
    },
  };
}

function rowSeats(value: unknown, at: string, fail: Fail): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ROWS)
    fail(at, `must be a list of 1 to ${MAX_ROWS} seat counts, one per row`);
  const counts = value as unknown[];
  counts.forEach((count, index) => {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > MAX_SEATS_PER_ROW) {
      fail(
        `${at}[${index}]`,
        `must be a whole number from 0 (an aisle) to ${MAX_SEATS_PER_ROW} (got ${JSON.stringify(count)})`,
      );
    }
  });
  if (!counts.some((count) => (count as number) > 0)) fail(at, 'must give at least one row a seat');
  return counts as number[];
}

function object(value: unknown, at: string, required: string[], optional: string[], fail: Fail): Fields {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return fail(at, 'must be a JSON object');
  const fields = value as Fields;
  for (const key of Object.keys(fields)) {
    if (!required.includes(key) && !optional.includes(key))
      fail(at, `has an unknown field "${key}" (known: ${[...required, ...optional].join(', ')})`);
  }
  for (const key of required) {
    if (fields[key] === undefined) fail(at, `lacks the field "${key}"`);
  }
  return fields;
}

function text(fields: Fields, key: string, at: string, fail: Fail, pattern?: RegExp, expected?: string): string {
  const value = fields[key];
  if (typeof value !== 'string' || value.trim() === '')
    return fail(join(at, key), `must be a non-empty string (got ${JSON.stringify(value)})`);
  if (pattern && !pattern.test(value)) fail(join(at, key), `must be ${expected} (got ${JSON.stringify(value)})`);
  return value;
}

function optionalText(fields: Fields, key: string, at: string, fail: Fail): string {
  const value = fields[key];
  if (value === undefined) return '';
  if (typeof value !== 'string') fail(join(at, key), `must be a string (got ${JSON.stringify(value)})`);
  return value;
}

function integer(
  fields: Fields,
  key: string,
  at: string,
  fail: Fail,
  min: number,
  max: number,
  what = 'a whole number',
): number {
  const value = fields[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(join(at, key), `must be ${what} from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function time(fields: Fields, key: string, at: string, fail: Fail): string {
  const value = fields[key];
  if (typeof value !== 'string' || !RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
    fail(join(at, key), `must be an RFC 3339 time such as "2026-12-24T19:00:00+09:00" (got ${JSON.stringify(value)})`);
  }
  return value;
}
