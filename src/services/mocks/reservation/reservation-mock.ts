import {RESERVATION_ROUTES} from '../../backends/routes.js';
import {usageError} from '../../errors.js';
import type {MockDefinition} from '../kit.js';
import type {Catalog} from './catalog.js';
import {inventoryService} from './inventory-service.js';
import {reservationService} from './reservation-service.js';
import {ReservationState} from './state.js';

export {DEFAULT_CATALOG_FILE, loadCatalog, parseCatalog, seatsOfSection} from './catalog.js';
export type {Catalog, CatalogAddress, CatalogEvent, CatalogMoney, CatalogSection, CatalogVenue, SeatInfo} from './catalog.js';

/** How long a hold lasts unless configured otherwise (DESIGN.md §5). */
export const DEFAULT_HOLD_MS = 60_000;

export interface ReservationMockOptions {
  catalog: Catalog;
  /** How long CreateReservation (and ReserveSeat without hold_expires_at) holds seats. */
  holdMs: number;
  /** The clock of timestamps and expiry checks; hold timers still run in real time. */
  now?: () => number;
}

/** The reservation backend: ReservationService and InventoryService over one in-memory seat ledger. */
export function createReservationMock(options: ReservationMockOptions): MockDefinition {
  if (!Number.isFinite(options.holdMs) || options.holdMs <= 0) throw usageError(`The hold time must be a positive number of milliseconds (got ${options.holdMs}).`);
  const state = new ReservationState(options.catalog, options.holdMs, options.now ?? Date.now);
  return {
    name: 'reservation',
    services: {
      'reservation.v1.ReservationService': reservationService(state),
      'reservation.v1.InventoryService': inventoryService(state),
    },
    routes: RESERVATION_ROUTES,
    close: () => state.close(),
  };
}
