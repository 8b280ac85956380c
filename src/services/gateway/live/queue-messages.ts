import {timestamp} from '../../server-kit/grpc/handlers.js';
import {isAdmissionReady, type QueueState} from '../queue/queue-service.js';

/** The proto type of every queue update message, on every door. */
export const QUEUE_UPDATE_TYPE = 'gateway.v1.StreamQueueUpdatesResponse';

/** Which QueueEventType a state is told as. */
export function queueEventType(state: QueueState): string {
  if (state.status === 'expired') return 'QUEUE_EVENT_TYPE_TOKEN_EXPIRED';
  return isAdmissionReady(state) ? 'QUEUE_EVENT_TYPE_ADMISSION_READY' : 'QUEUE_EVENT_TYPE_POSITION_CHANGED';
}

/**
 * A token's state as a StreamQueueUpdatesResponse (proto-loader shape, as the gRPC handler yields
 * it), sent at `sentAt` (ms); undefined for 'left', which ends a stream without a message.
 */
export function queueUpdateMessage(state: QueueState, correlationId: string, sentAt = Date.now()) {
  if (state.status === 'left') return undefined;
  const waiting = state.status === 'waiting';
  return {
    type: 'EVENT_TYPE_QUEUE_UPDATE',
    queue_update: {
      waiting_token: state.waitingToken,
      position: waiting ? state.position : 0,
      eta_seconds: waiting ? state.etaSeconds : 0,
      event_type: queueEventType(state),
      admission_ready: isAdmissionReady(state),
      expires_at: waiting ? timestamp(state.expiresAt) : null,
    },
    timestamp: timestamp(sentAt),
    correlation_id: correlationId,
  };
}
