import {invalidArgument} from '../../server-kit/api-errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import {text} from '../message-fields.js';
import type {SeatInfo} from '../../catalog.js';
import type {EventRecord, ReservationRecord, ReservationState, SeatStatus} from './state.js';

/* Requests and responses as @grpc/proto-loader has them: snake_case, enums as names, int64 as strings. */

export function money(amount: number, currency: string): {amount: string; currency: string} {
  return {amount: String(amount), currency};
}

export function seatMessage(info: SeatInfo, status: SeatStatus): object {
  return {
    id: info.id,
    section: info.sectionId,
    row: info.row,
    number: info.number,
    price: money(info.price.amount, info.price.currency),
    status,
  };
}

/** The price of `seats`; an event has one currency, so an empty list is priced in it too. */
export function totalOf(seats: SeatInfo[], record: EventRecord): {amount: string; currency: string} {
  const currency = seats[0]?.price.currency ?? record.event.sections[0].price.currency;
  return money(
    seats.reduce((sum, seat) => sum + seat.price.amount, 0),
    currency,
  );
}

export function seatInfos(state: ReservationState, eventId: string, seatIds: string[]): SeatInfo[] {
  const record = state.events.get(eventId)!;
  return seatIds.map((id) => record.byId.get(id)!.info);
}

/** The seats of a reservation as it sees them: held, sold, or given back. */
export function reservationSeatStatus(reservation: ReservationRecord): SeatStatus {
  if (reservation.status === 'RESERVATION_STATUS_HOLD') return 'SEAT_STATUS_RESERVED';
  if (reservation.status === 'RESERVATION_STATUS_CONFIRMED') return 'SEAT_STATUS_SOLD';
  return 'SEAT_STATUS_AVAILABLE';
}

export function reservationMessage(state: ReservationState, reservation: ReservationRecord): object {
  const infos = seatInfos(state, reservation.eventId, reservation.hold.seatIds);
  const status = reservationSeatStatus(reservation);
  return {
    reservation_id: reservation.id,
    event_id: reservation.eventId,
    user_id: reservation.userId,
    status: reservation.status,
    seats: infos.map((info) => seatMessage(info, status)),
    quantity: infos.length,
    total_amount: totalOf(infos, state.events.get(reservation.eventId)!),
    created_at: timestamp(reservation.createdAt),
    updated_at: timestamp(reservation.updatedAt),
    hold_expires_at: timestamp(reservation.hold.expiresAt),
    payment_intent_id: reservation.paymentIntentId,
    order_id: reservation.orderId,
    metadata: reservation.metadata,
  };
}

export function eventMessage(record: EventRecord): object {
  const {event} = record;
  return {
    id: event.id,
    name: event.name,
    description: event.description,
    venue: {
      id: event.venue.id,
      name: event.venue.name,
      address: {...event.venue.address},
      total_capacity: event.venue.total_capacity,
    },
    start_time: timestamp(Date.parse(event.start_time)),
    end_time: timestamp(Date.parse(event.end_time)),
    sale_start_time: timestamp(Date.parse(event.sale_start_time)),
    sale_end_time: timestamp(Date.parse(event.sale_end_time)),
    total_seats: record.seats.length,
    remaining_seats: record.seats.filter((seat) => seat.status === 'SEAT_STATUS_AVAILABLE').length,
  };
}

// Readers of request fields: the HTTP door may hand over a field unset, so nothing is assumed filled.

export function int(value: unknown, field: string): number {
  const number = value === undefined || value === null || value === '' ? 0 : Number(value);
  if (!Number.isInteger(number))
    throw invalidArgument(field, `${field} must be a whole number (got ${JSON.stringify(value)}).`);
  return number;
}

export function texts(value: unknown): string[] {
  return Array.isArray(value) ? value.map(text) : [];
}

/** A google.protobuf.Timestamp in milliseconds, or undefined when unset (zero). */
export function timestampMs(value: unknown, field: string): number | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const {seconds, nanos} = value as {seconds?: unknown; nanos?: unknown};
  const ms = Number(seconds ?? 0) * 1000 + Math.floor(Number(nanos ?? 0) / 1_000_000);
  if (!Number.isFinite(ms)) throw invalidArgument(field, `${field} is not a valid timestamp.`);
  return ms === 0 ? undefined : ms;
}
