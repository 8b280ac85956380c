import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError} from '../../errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import type {RpcHandler} from '../mock-definition.js';
import {DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, text} from '../message-fields.js';
import {int, reservationMessage, seatInfos, seatMessage, texts, totalOf} from './messages.js';
import type {ReservationRecord, ReservationState} from './state.js';

const MAX_EXTENSION_SECONDS = 300;

/** reservation.v1.ReservationService over the mock's state. */
export function reservationService(state: ReservationState, publicUrl: () => string): Record<string, RpcHandler> {
  return {
    async CreateReservation(request) {
      const eventId = text(request.event_id);
      const quantity = int(request.quantity, 'quantity');
      state.checkOrderSize(eventId, Array.isArray(request.seat_ids) ? request.seat_ids.length : 0, quantity);
      const seatIds = texts(request.seat_ids);
      const userId = text(request.user_id);
      // reservation_token is the gateway's business (it checks and consumes it), and metadata varies
      // between retries (IP, user agent): neither makes two requests different.
      const asked = {event_id: eventId, seat_ids: [...seatIds].sort(), quantity, user_id: userId};
      return state.idempotent('CreateReservation', text(request.idempotency_key), asked, () => {
        const record = state.event(eventId);
        const seats = state.pickSeats(record, seatIds, quantity);
        const expiresAt = state.now() + state.holdMs;
        const hold = state.hold(seats, {reservationId: state.freshReservationId(), eventId, userId, expiresAt});
        const metadata =
          request.metadata && typeof request.metadata === 'object' ? structuredClone(request.metadata as object) : null;
        const reservation = state.newReservation(hold, {userId, metadata});
        const infos = seats.map((seat) => seat.info);
        return {
          reservation_id: reservation.id,
          status: reservation.status,
          hold_expires_at: timestamp(expiresAt),
          reserved_seats: infos.map((info) => seatMessage(info, 'SEAT_STATUS_RESERVED')),
          total_amount: totalOf(infos, record),
          // The mock has no checkout page: the link is the reservation's own REST route.
          payment_url: `${publicUrl()}/api/v1/reservations/${encodeURIComponent(reservation.id)}`,
        };
      });
    },

    async GetReservation(request) {
      return {reservation: reservationMessage(state, find(state, request))};
    },

    async ConfirmReservation(request) {
      const asked = {
        reservation_id: text(request.reservation_id),
        payment_intent_id: text(request.payment_intent_id),
        user_id: text(request.user_id),
      };
      return state.idempotent('ConfirmReservation', text(request.idempotency_key), asked, () => {
        const reservation = find(state, request);
        switch (reservation.status) {
          case 'RESERVATION_STATUS_EXPIRED':
            throw expired(reservation, 'confirmed');
          case 'RESERVATION_STATUS_CANCELLED':
            throw new TacosError(`Reservation "${reservation.id}" was cancelled; it cannot be confirmed.`, {
              code: 'FAILED_PRECONDITION',
            });
          case 'RESERVATION_STATUS_CONFIRMED':
            throw new TacosError(
              `Reservation "${reservation.id}" is already confirmed (order ${reservation.orderId}).`,
              {code: 'FAILED_PRECONDITION'},
            );
          case 'RESERVATION_STATUS_HOLD':
            break;
        }
        const orderId = state.commit(reservation.hold, asked.payment_intent_id);
        return {
          order_id: orderId,
          status: reservation.status,
          confirmed_at: timestamp(reservation.confirmedAt),
          confirmed_seats: seatInfos(state, reservation.eventId, reservation.hold.seatIds).map((info) =>
            seatMessage(info, 'SEAT_STATUS_SOLD'),
          ),
        };
      });
    },

    async CancelReservation(request) {
      const asked = {reservation_id: text(request.reservation_id), user_id: text(request.user_id)};
      return state.idempotent('CancelReservation', text(request.idempotency_key), asked, () => {
        const reservation = find(state, request);
        switch (reservation.status) {
          case 'RESERVATION_STATUS_EXPIRED':
            throw expired(reservation, 'cancelled');
          case 'RESERVATION_STATUS_CONFIRMED':
            throw new TacosError(
              `Reservation "${reservation.id}" is confirmed (order ${reservation.orderId}); a confirmed reservation cannot be cancelled.`,
              {
                code: 'FAILED_PRECONDITION',
              },
            );
          case 'RESERVATION_STATUS_HOLD':
            state.release(reservation.hold, reservation.hold.seatIds);
            break;
          case 'RESERVATION_STATUS_CANCELLED':
            // Cancelling again answers as the first time did: a retry after a lost answer must not fail.
            break;
        }
        return {
          status: reservation.status,
          cancelled_at: timestamp(reservation.cancelledAt),
          released_seats: seatInfos(state, reservation.eventId, reservation.hold.seatIds).map((info) =>
            seatMessage(info, 'SEAT_STATUS_AVAILABLE'),
          ),
        };
      });
    },

    async ListReservations(request) {
      const userId = text(request.user_id);
      const status = text(request.status);
      const eventId = text(request.event_id);
      const pagination = (request.pagination ?? {}) as Record<string, unknown>;
      const page = int(pagination.page, 'pagination.page');
      const requestedSize = int(pagination.page_size, 'pagination.page_size');
      if (page < 0) throw invalidArgument('pagination.page', `pagination.page is 1-based (got ${page}).`);
      if (requestedSize < 0)
        throw invalidArgument(
          'pagination.page_size',
          `pagination.page_size must be 0 (default ${DEFAULT_PAGE_SIZE}) or more (got ${requestedSize}).`,
        );
      const size = requestedSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(requestedSize, MAX_PAGE_SIZE);

      const all = [...state.reservations.values()]
        .filter((reservation) => !userId || reservation.userId === userId)
        .filter(
          (reservation) => !status || status === 'RESERVATION_STATUS_UNSPECIFIED' || reservation.status === status,
        )
        .filter((reservation) => !eventId || reservation.eventId === eventId)
        .sort((a, b) => b.seq - a.seq);

      // Cursors name a reservation rather than an offset, so new reservations do not shift the pages.
      let start: number;
      let end: number;
      const cursor = text(pagination.cursor);
      if (cursor) {
        const {direction, seq} = parseCursor(cursor);
        if (direction === 'after') {
          start = indexOrEnd(all, (reservation) => reservation.seq < seq);
          end = Math.min(start + size, all.length);
        } else {
          end = indexOrEnd(all, (reservation) => reservation.seq <= seq);
          start = Math.max(end - size, 0);
        }
      } else {
        start = Math.min((Math.max(page, 1) - 1) * size, all.length);
        end = Math.min(start + size, all.length);
      }
      const items = all.slice(start, end);
      const hasNext = end < all.length;
      const hasPrevious = start > 0;
      return {
        reservations: items.map((reservation) => reservationMessage(state, reservation)),
        page_info: {
          total_count: all.length,
          has_next_page: hasNext,
          has_previous_page: hasPrevious,
          // Bounds taken from the neighbours outside the page, so an empty page has cursors too.
          next_cursor: hasNext ? makeCursor('after', all[end].seq + 1) : '',
          previous_cursor: hasPrevious ? makeCursor('before', all[start - 1].seq - 1) : '',
        },
      };
    },

    async ExtendHold(request) {
      const seconds = int(request.extension_seconds, 'extension_seconds');
      if (seconds < 1 || seconds > MAX_EXTENSION_SECONDS) {
        throw invalidArgument(
          'extension_seconds',
          `extension_seconds must be from 1 to ${MAX_EXTENSION_SECONDS} (got ${seconds}).`,
        );
      }
      const asked = {
        reservation_id: text(request.reservation_id),
        user_id: text(request.user_id),
        extension_seconds: seconds,
      };
      return state.idempotent('ExtendHold', text(request.idempotency_key), asked, () => {
        const reservation = find(state, request);
        if (reservation.status === 'RESERVATION_STATUS_EXPIRED') throw expired(reservation, 'extended');
        if (reservation.status !== 'RESERVATION_STATUS_HOLD') {
          const what = reservation.status === 'RESERVATION_STATUS_CONFIRMED' ? 'is confirmed' : 'was cancelled';
          throw new TacosError(`Reservation "${reservation.id}" ${what}; only a hold can be extended.`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        state.extend(reservation.hold, seconds * 1000);
        reservation.updatedAt = state.now();
        return {
          new_expires_at: timestamp(reservation.hold.expiresAt),
          extended_seconds: seconds,
          extension_allowed: true,
        };
      });
    },
  };
}

/** The reservation a request names, if the caller may see it, with its hold settled. */
function find(state: ReservationState, request: {reservation_id?: unknown; user_id?: unknown}): ReservationRecord {
  const id = text(request.reservation_id);
  if (!id) throw invalidArgument('reservation_id', 'reservation_id is required.');
  const reservation = state.reservations.get(id);
  if (!reservation) throw new TacosError(`No reservation "${id}".`, {code: 'NOT_FOUND'});
  const userId = text(request.user_id);
  // A reservation made without a user belongs to nobody in particular, so anyone may use it.
  // Another user's reservation does not exist for them (the contract: NOT_FOUND, nothing leaked).
  if (userId && reservation.userId && userId !== reservation.userId) {
    throw new TacosError(`No reservation "${id}".`, {code: 'NOT_FOUND'});
  }
  state.settle(reservation.hold);
  return reservation;
}

function expired(reservation: ReservationRecord, verb: string): TacosError {
  return new TacosError(
    `Reservation "${reservation.id}" expired at ${new Date(reservation.hold.expiresAt).toISOString()} and cannot be ${verb}; its seats were released.`,
    {code: 'RESERVATION_EXPIRED', hint: 'Create a new reservation.'},
  );
}

function indexOrEnd<T>(items: T[], test: (item: T) => boolean): number {
  const index = items.findIndex(test);
  return index < 0 ? items.length : index;
}

function makeCursor(direction: 'after' | 'before', seq: number): string {
  return Buffer.from(`${direction}:${seq}`).toString('base64url');
}

function parseCursor(cursor: string): {direction: 'after' | 'before'; seq: number} {
  const match = /^(after|before):(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw invalidArgument('pagination.cursor', 'pagination.cursor is not a cursor this service gave out.');
  return {direction: match[1] as 'after' | 'before', seq: Number(match[2])};
}
