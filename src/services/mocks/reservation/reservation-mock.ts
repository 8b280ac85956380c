import {RESERVATION_ROUTES} from '../../backends/routes.js';
import {usageError} from '../../errors.js';
import {reservationEvent} from '../../redis/user-channel.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import type {MockDefinition, RpcHandler, UpdateListener} from '../mock-definition.js';
import {publicUrlOf, type PublicUrl} from '../public-url.js';
import {retentionOf, type Retention} from '../retention.js';
import type {Catalog} from '../../catalog.js';
import {inventoryService} from './inventory-service.js';
import {reservationService} from './reservation-service.js';
import {ReservationState} from './state.js';
import {INVENTORY_SERVICE, RESERVATION_SERVICE} from '../../service-names.js';

/** How long a hold lasts unless configured otherwise (README, "The mock backends"). */
export const DEFAULT_HOLD_MS = 60_000;

export interface ReservationMockOptions {
  catalog: Catalog;
  /** How long CreateReservation (and ReserveSeat without hold_expires_at) holds seats. */
  holdMs: number;
  /** The clock of timestamps, expiry checks and retention; the hold timer still runs in real time. */
  now?: () => number;
  /** How long idempotency answers and finished reservations are kept; defaults in retention.ts (24 h, 1 h, 24 h). */
  retention?: Partial<Retention>;
  /** Base of the payment_url CreateReservation answers (the mock's own HTTP address); default http://127.0.0.1:8010. */
  publicUrl?: PublicUrl;
  /** Told of each status a reservation takes, as the update its user's streams show (serve.ts publishes it). */
  onUpdate?: UpdateListener;
}

/** The reservation backend: ReservationService and InventoryService over one in-memory seat ledger. */
export function createReservationMock(options: ReservationMockOptions): MockDefinition {
  if (!Number.isFinite(options.holdMs) || options.holdMs <= 0)
    throw usageError(`The hold time must be a positive number of milliseconds (got ${options.holdMs}).`);
  const state = new ReservationState(
    options.catalog,
    options.holdMs,
    options.now ?? Date.now,
    retentionOf(options.retention, usageError),
    (reservation, oldStatus) =>
      options.onUpdate?.(
        reservation.userId,
        reservationEvent(
          {
            id: reservation.id,
            oldStatus,
            newStatus: reservation.status,
            holdExpiresAt: timestamp(reservation.hold.expiresAt),
          },
          reservation.updatedAt,
          '',
        ),
      ),
  );
  // Every call first settles the holds that are due and forgets what is past its retention.
  const tidied = (handlers: Record<string, RpcHandler>): Record<string, RpcHandler> =>
    Object.fromEntries(
      Object.entries(handlers).map(([method, handler]): [string, RpcHandler] => [
        method,
        async (request, context) => {
          state.settleDue();
          state.prune();
          return handler(request, context);
        },
      ]),
    );
  return {
    name: 'reservation',
    services: {
      [RESERVATION_SERVICE]: tidied(reservationService(state, publicUrlOf(options.publicUrl, 'http://127.0.0.1:8010'))),
      [INVENTORY_SERVICE]: tidied(inventoryService(state)),
    },
    routes: RESERVATION_ROUTES,
    close: () => state.close(),
  };
}
