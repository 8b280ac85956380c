import {invalidArgument} from '../../server-kit/api-errors.js';

/** Event ids are used inside Redis keys and tokens, so they are kept to a safe alphabet. */
export const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Events with waiting tokens, each scored with the time (ms) its next heartbeat deadline is due for a sweep. */
export const EVENTS_KEY = 'tacos:queue:events';

/** Events opened at run time (an unknown id in development, or an admin's call), scored with when they close (ms). */
export const OPEN_EVENTS_KEY = 'tacos:queue:open';

/** An Idempotency-Key's claim across events: the same key cannot join two events. */
export function idempotencyClaimKey(key: string): string {
  return `tacos:idempotency:${key}`;
}

export function assertEventId(eventId: string, field = 'event_id'): void {
  if (!EVENT_ID.test(eventId)) {
    throw invalidArgument(field, `${field} must be 1-128 characters of letters, digits, _ . : or -.`);
  }
}

/** Every key of one event carries the hash tag {eventId}, so a Redis Cluster keeps them on one slot. */
export function queueKeys(eventId: string) {
  const prefix = `tacos:queue:{${eventId}}:`;
  return {
    seq: `${prefix}seq`,
    waiting: `${prefix}waiting`,
    heartbeat: `${prefix}heartbeat`,
    bucket: `${prefix}bucket`,
    admits: `${prefix}admits`,
    stats: `${prefix}stats`,
    changes: `${prefix}changes`,
    tokenPrefix: `${prefix}token:`,
    token: (token: string) => `${prefix}token:${token}`,
    idempotency: (key: string) => `${prefix}idem:${key}`,
    reservationToken: (token: string) => `${prefix}rtoken:${token}`,
  };
}

/** The event id a channel name belongs to, or undefined for another channel. */
export function eventIdOfChannel(channel: string): string | undefined {
  return /^tacos:queue:\{(.+)\}:changes$/.exec(channel)?.[1];
}
