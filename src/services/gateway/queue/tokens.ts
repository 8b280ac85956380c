import {randomBytes} from 'node:crypto';

/**
 * A waiting token names its event (so status and enter need nothing else) and carries 128 random
 * bits: `<base64url(eventId)>.<random>`.
 */
export function newWaitingToken(eventId: string): string {
  return `${Buffer.from(eventId).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
}

export function eventIdOfWaitingToken(token: string): string | undefined {
  const match = /^([A-Za-z0-9_-]{2,172})\.[A-Za-z0-9_-]{22}$/.exec(token);
  return match ? Buffer.from(match[1], 'base64url').toString() : undefined;
}

export function newReservationToken(): string {
  return `rt_${randomBytes(18).toString('base64url')}`;
}
