import type {JsonObject} from '@bufbuild/protobuf';
import {INVENTORY_SERVICE, PAYMENT_SERVICE, RESERVATION_SERVICE} from '../service-names.js';

/**
 * The REST routes of the backends: the mocks serve them, and the gateway's HTTP clients call them.
 * Path parameters are request fields; GET sends the other fields as the query, POST as the body.
 */
export interface BackendRoute {
  verb: 'GET' | 'POST';
  /** Fastify-style path, `:field` standing for a request field. */
  path: string;
  service: string;
  method: string;
}

export const RESERVATION_ROUTES: BackendRoute[] = [
  {verb: 'POST', path: '/api/v1/reservations', service: RESERVATION_SERVICE, method: 'CreateReservation'},
  {verb: 'GET', path: '/api/v1/reservations', service: RESERVATION_SERVICE, method: 'ListReservations'},
  {verb: 'GET', path: '/api/v1/reservations/:reservation_id', service: RESERVATION_SERVICE, method: 'GetReservation'},
  {
    verb: 'POST',
    path: '/api/v1/reservations/:reservation_id/confirm',
    service: RESERVATION_SERVICE,
    method: 'ConfirmReservation',
  },
  {
    verb: 'POST',
    path: '/api/v1/reservations/:reservation_id/cancel',
    service: RESERVATION_SERVICE,
    method: 'CancelReservation',
  },
  {
    verb: 'POST',
    path: '/api/v1/reservations/:reservation_id/extend',
    service: RESERVATION_SERVICE,
    method: 'ExtendHold',
  },
  {verb: 'POST', path: '/api/v1/inventory/availability', service: INVENTORY_SERVICE, method: 'CheckAvailability'},
  {verb: 'POST', path: '/api/v1/inventory/reserve', service: INVENTORY_SERVICE, method: 'ReserveSeat'},
  {verb: 'POST', path: '/api/v1/inventory/commit', service: INVENTORY_SERVICE, method: 'CommitReservation'},
  {verb: 'POST', path: '/api/v1/inventory/release', service: INVENTORY_SERVICE, method: 'ReleaseHold'},
  {verb: 'GET', path: '/api/v1/events/:event_id/inventory', service: INVENTORY_SERVICE, method: 'GetInventoryStatus'},
];

export const PAYMENT_ROUTES: BackendRoute[] = [
  {verb: 'POST', path: '/api/v1/payments/intents', service: PAYMENT_SERVICE, method: 'CreatePaymentIntent'},
  {verb: 'POST', path: '/api/v1/payments/process', service: PAYMENT_SERVICE, method: 'ProcessPayment'},
  {verb: 'GET', path: '/api/v1/payments', service: PAYMENT_SERVICE, method: 'ListPayments'},
  {verb: 'GET', path: '/api/v1/payments/:payment_intent_id', service: PAYMENT_SERVICE, method: 'GetPaymentStatus'},
  {verb: 'POST', path: '/api/v1/payments/:payment_intent_id/cancel', service: PAYMENT_SERVICE, method: 'CancelPayment'},
  {
    verb: 'POST',
    path: '/api/v1/payments/:payment_intent_id/webhook',
    service: PAYMENT_SERVICE,
    method: 'SimulateWebhook',
  },
];

/** The URL path, query and body that carry `request` (proto3 JSON) on `route`. */
export function routeRequest(
  route: BackendRoute,
  request: JsonObject,
): {path: string; query: URLSearchParams; body?: JsonObject} {
  const rest: JsonObject = {...request};
  const path = route.path.replace(/:(\w+)/g, (_, field: string) => {
    const value = rest[field];
    delete rest[field];
    return encodeURIComponent(String(value ?? ''));
  });
  const query = new URLSearchParams();
  if (route.verb === 'POST') return {path, query, body: rest};
  for (const [key, value] of Object.entries(rest)) {
    // Only set scalars travel in a query; defaults mean "no filter".
    if (
      value !== null &&
      typeof value !== 'object' &&
      value !== '' &&
      value !== 0 &&
      value !== false &&
      !/_UNSPECIFIED$/.test(String(value))
    ) {
      query.set(key, String(value));
    }
  }
  return {path, query};
}
