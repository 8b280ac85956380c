/*
 * The contracts' fully qualified service names (package and service of proto/<pkg>/v1/*.proto), the
 * one place the gateway, the backend clients and the mocks take them from.
 */

export const QUEUE_SERVICE = 'gateway.v1.QueueService';
export const WEBSOCKET_SERVICE = 'gateway.v1.WebSocketService';
export const GATEWAY_SERVICE = 'gateway.v1.GatewayService';
export const RESERVATION_SERVICE = 'reservation.v1.ReservationService';
export const INVENTORY_SERVICE = 'reservation.v1.InventoryService';
export const PAYMENT_SERVICE = 'payment.v1.PaymentService';
