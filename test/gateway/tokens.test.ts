/** Tokens come from a pool of CSPRNG bytes: each must still be unique, well-formed, and name its event. */
import {describe, expect, it} from 'vitest';
import {
  eventIdOfReservationToken,
  eventIdOfWaitingToken,
  newReservationToken,
  newWaitingToken,
} from '../../src/services/gateway/queue/tokens.js';

describe('queue tokens', () => {
  it('10,000 waiting tokens (many pool refills) are distinct, 128 random bits each, and name their event', () => {
    const tokens = Array.from({length: 10_000}, (_, i) => newWaitingToken(`evt_${i % 7}`));
    expect(new Set(tokens).size).toBe(tokens.length);
    tokens.forEach((token, i) => {
      expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
      expect(eventIdOfWaitingToken(token)).toBe(`evt_${i % 7}`);
    });
  });

  it('reservation tokens interleaved with waiting tokens are distinct too, and name their event', () => {
    const tokens = Array.from({length: 5_000}, (_, i) =>
      i % 2 ? newReservationToken('evt_2025_1004') : newWaitingToken('evt'),
    );
    expect(new Set(tokens.map((token) => token.slice(-22))).size).toBe(tokens.length);
    expect(tokens[1]).toMatch(/^rt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(eventIdOfReservationToken(tokens[1])).toBe('evt_2025_1004');
    // A waiting token is not a reservation token.
    expect(eventIdOfReservationToken(tokens[0])).toBeUndefined();
  });
});
