import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError} from '../../errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import type {RpcHandler} from '../mock-definition.js';
import {text} from '../message-fields.js';
import {eventMessage, int, money, seatInfos, seatMessage, texts, timestampMs} from './messages.js';
import type {Hold, ReservationState, SeatRecord} from './state.js';

/**
 * reservation.v1.InventoryService over the same seats as ReservationService. Outcomes the contract
 * has a status for (commit refused, nothing to release) are answered with that status; bad
 * requests, unknown holds and conflicts on holding are errors.
 */
export function inventoryService(state: ReservationState): Record<string, RpcHandler> {
  return {
    async CheckAvailability(request) {
      const record = state.event(text(request.event_id));
      const sectionId = text(request.section);
      if (sectionId) state.section(record, sectionId);
      const seatIds = texts(request.seat_ids);
      const quantity = int(request.quantity, 'quantity');
      if (quantity < 0) throw invalidArgument('quantity', `quantity must be 0 or more (got ${quantity}).`);
      const free = record.seats.filter(
        (seat) => seat.status === 'SEAT_STATUS_AVAILABLE' && (!sectionId || seat.info.sectionId === sectionId),
      );

      let available: boolean;
      let availableSeats: SeatRecord[];
      let unavailable: string[] = [];
      if (seatIds.length > 0) {
        if (quantity !== 0 && quantity !== seatIds.length) {
          throw invalidArgument(
            'quantity',
            `quantity (${quantity}) must equal the number of seat_ids (${seatIds.length}), or be 0.`,
          );
        }
        const seats = state.namedSeats(record, seatIds, sectionId);
        availableSeats = seats.filter((seat) => seat.status === 'SEAT_STATUS_AVAILABLE');
        unavailable = seats.filter((seat) => seat.status !== 'SEAT_STATUS_AVAILABLE').map((seat) => seat.info.id);
        available = unavailable.length === 0;
      } else if (quantity > 0) {
        // The seats a CreateReservation for this quantity would pick.
        availableSeats = free.slice(0, quantity);
        available = free.length >= quantity;
      } else {
        availableSeats = free;
        available = free.length > 0;
      }
      return {
        available,
        available_seats: availableSeats.map((seat) => seatMessage(seat.info, seat.status)),
        unavailable_seat_ids: unavailable,
        remaining_in_section: free.length,
      };
    },

    async ReserveSeat(request) {
      const reservationId = text(request.reservation_id);
      if (!reservationId)
        throw invalidArgument('reservation_id', 'reservation_id is required: the hold is found by it later.');
      const eventId = text(request.event_id);
      const quantity = int(request.quantity, 'quantity');
      state.checkOrderSize(eventId, Array.isArray(request.seat_ids) ? request.seat_ids.length : 0, quantity);
      const seatIds = texts(request.seat_ids);
      const userId = text(request.user_id);
      const askedExpiry = timestampMs(request.hold_expires_at, 'hold_expires_at');
      const asked = {
        reservation_id: reservationId,
        event_id: eventId,
        seat_ids: [...seatIds].sort(),
        quantity,
        user_id: userId,
        hold_expires_at: askedExpiry ?? 0,
      };
      return state.idempotent('ReserveSeat', text(request.idempotency_key), asked, () => {
        if (state.reservations.has(reservationId)) {
          throw new TacosError(`"${reservationId}" is a ReservationService reservation; it already has its hold.`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        const earlier = state.holdsByReservation.get(reservationId);
        // A reservation may hold again once its previous hold ended without a sale.
        if (earlier && (earlier.status === 'HOLD_STATUS_ACTIVE' || earlier.status === 'HOLD_STATUS_COMMITTED')) {
          throw new TacosError(`Reservation "${reservationId}" already has hold ${earlier.id} (${earlier.status}).`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        const record = state.event(eventId);
        const now = state.now();
        const expiresAt = askedExpiry ?? now + state.holdMs;
        if (expiresAt <= now) throw invalidArgument('hold_expires_at', 'hold_expires_at must be in the future.');
        const seats = state.pickSeats(record, seatIds, quantity);
        const hold = state.hold(seats, {reservationId, eventId, userId, expiresAt});
        return {
          hold_id: hold.id,
          reserved_seats: seats.map((seat) => seatMessage(seat.info, 'SEAT_STATUS_RESERVED')),
          hold_expires_at: timestamp(expiresAt),
          status: hold.status,
        };
      });
    },

    async CommitReservation(request) {
      const paymentIntentId = text(request.payment_intent_id);
      const asked = {
        reservation_id: text(request.reservation_id),
        event_id: text(request.event_id),
        seat_ids: [...texts(request.seat_ids)].sort(),
        quantity: int(request.quantity, 'quantity'),
        payment_intent_id: paymentIntentId,
        user_id: text(request.user_id),
      };
      return state.idempotent('CommitReservation', text(request.idempotency_key), asked, () => {
        const hold = findHold(state, request);
        if (!hold) throw new TacosError(`No hold for reservation "${asked.reservation_id}".`, {code: 'NOT_FOUND'});
        checkOwner(hold, asked.user_id);
        if (hold.status === 'HOLD_STATUS_COMMITTED') {
          throw new TacosError(`Reservation "${hold.reservationId}" is already committed (order ${hold.orderId}).`, {
            code: 'FAILED_PRECONDITION',
          });
        }
        if (hold.status === 'HOLD_STATUS_EXPIRED') return {status: 'COMMIT_STATUS_FAILED_EXPIRED'};
        if (hold.status === 'HOLD_STATUS_RELEASED') return {status: 'COMMIT_STATUS_FAILED_CONFLICT'};
        const named = texts(request.seat_ids);
        if (named.some((id) => !hold.seatIds.includes(id))) return {status: 'COMMIT_STATUS_FAILED_CONFLICT'};
        // A hold is sold whole: selling part of it would leave the rest in limbo.
        if (named.length > 0 && named.length !== hold.seatIds.length) {
          throw invalidArgument(
            'seat_ids',
            `A commit sells the whole hold (${hold.seatIds.join(', ')}): name all its seats or none.`,
          );
        }
        if (asked.quantity !== 0 && asked.quantity !== hold.seatIds.length) {
          throw invalidArgument(
            'quantity',
            `quantity (${asked.quantity}) must be 0 or the number of held seats (${hold.seatIds.length}).`,
          );
        }
        if (!paymentIntentId) return {status: 'COMMIT_STATUS_FAILED_PAYMENT'};
        const orderId = state.commit(hold, paymentIntentId);
        return {
          order_id: orderId,
          sold_seats: seatInfos(state, hold.eventId, hold.seatIds).map((info) => seatMessage(info, 'SEAT_STATUS_SOLD')),
          status: 'COMMIT_STATUS_SUCCESS',
          committed_at: timestamp(state.now()),
        };
      });
    },

    async ReleaseHold(request) {
      const asked = {
        reservation_id: text(request.reservation_id),
        event_id: text(request.event_id),
        seat_ids: [...texts(request.seat_ids)].sort(),
        quantity: int(request.quantity, 'quantity'),
      };
      return state.idempotent('ReleaseHold', text(request.idempotency_key), asked, () => {
        const hold = findHold(state, request);
        if (!hold) return {status: 'RELEASE_STATUS_NOT_FOUND'};
        if (hold.status === 'HOLD_STATUS_EXPIRED' || hold.status === 'HOLD_STATUS_RELEASED')
          return {status: 'RELEASE_STATUS_ALREADY_RELEASED'};
        if (hold.status === 'HOLD_STATUS_COMMITTED') {
          throw new TacosError(
            `Reservation "${hold.reservationId}" is sold (order ${hold.orderId}); sold seats cannot be released.`,
            {code: 'FAILED_PRECONDITION'},
          );
        }
        const named = texts(request.seat_ids);
        const notHeld = named.filter((id) => !hold.seatIds.includes(id));
        if (notHeld.length > 0)
          throw invalidArgument(
            'seat_ids',
            `These seats are not held by reservation "${hold.reservationId}": ${notHeld.join(', ')}.`,
          );
        const releasing = named.length > 0 ? [...new Set(named)] : [...hold.seatIds];
        if (asked.quantity !== 0 && asked.quantity !== releasing.length) {
          throw invalidArgument(
            'quantity',
            `quantity (${asked.quantity}) must be 0 or the number of seats released (${releasing.length}).`,
          );
        }
        state.release(hold, releasing);
        return {
          released_seats: seatInfos(state, hold.eventId, releasing).map((info) =>
            seatMessage(info, 'SEAT_STATUS_AVAILABLE'),
          ),
          status: 'RELEASE_STATUS_SUCCESS',
          released_at: timestamp(state.now()),
        };
      });
    },

    async GetInventoryStatus(request) {
      const record = state.event(text(request.event_id));
      const sectionId = text(request.section);
      const sections = sectionId ? [state.section(record, sectionId)] : record.event.sections;
      const totals = {total_seats: 0, available_seats: 0, reserved_seats: 0, sold_seats: 0, blocked_seats: 0};
      const inventories = sections.map((section) => {
        const seats = record.seats.filter((seat) => seat.info.sectionId === section.id);
        const counts = {
          total_seats: seats.length,
          available_seats: seats.filter((seat) => seat.status === 'SEAT_STATUS_AVAILABLE').length,
          reserved_seats: seats.filter((seat) => seat.status === 'SEAT_STATUS_RESERVED').length,
          sold_seats: seats.filter((seat) => seat.status === 'SEAT_STATUS_SOLD').length,
          // The catalogue has no way to withhold seats yet.
          blocked_seats: 0,
        };
        for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += counts[key];
        // Every seat of a section has the section's price.
        const price = money(section.price.amount, section.price.currency);
        return {section_id: section.id, section_name: section.name, ...counts, min_price: price, max_price: {...price}};
      });
      return {
        event: eventMessage(record),
        sections: inventories,
        stats: {
          ...totals,
          availability_percentage:
            totals.total_seats === 0 ? 0 : Math.round((totals.available_seats / totals.total_seats) * 10_000) / 100,
          last_updated: timestamp(state.now()),
        },
      };
    },
  };
}

/** The hold of the reservation a request names (settled), after checking the event matches. */
function findHold(state: ReservationState, request: {reservation_id?: unknown; event_id?: unknown}): Hold | undefined {
  const reservationId = text(request.reservation_id);
  if (!reservationId) throw invalidArgument('reservation_id', 'reservation_id is required.');
  const hold = state.holdsByReservation.get(reservationId);
  if (!hold) return undefined;
  const eventId = text(request.event_id);
  if (eventId && eventId !== hold.eventId) {
    throw invalidArgument(
      'event_id',
      `Reservation "${reservationId}" holds seats of event "${hold.eventId}", not "${eventId}".`,
    );
  }
  state.settle(hold);
  return hold;
}

function checkOwner(hold: Hold, userId: string): void {
  if (userId && hold.userId && userId !== hold.userId) {
    throw new TacosError(`Reservation "${hold.reservationId}" belongs to another user.`, {code: 'FORBIDDEN'});
  }
}
