/** The sticky split: a caller's bucket is fixed by its key, so its road is too, and a higher share only adds callers to gRPC. */
import {describe, expect, it} from 'vitest';
import {bucketOf, fnv1a32, takesGrpc} from '../../src/services/backends/sticky-split.js';

const KEYS = Array.from({length: 20_000}, (_, index) => `user-${index}`);

describe('the sticky split', () => {
  it('hashes with FNV-1a 32 over UTF-8 (the published test vectors, and a non-ASCII key)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    // "é" is two bytes in UTF-8 (0xc3 0xa9): not the hash of its one UTF-16 unit.
    expect(fnv1a32('é')).toBe(Math.imul((Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) >>> 0) ^ 0xa9, 0x01000193) >>> 0);
    expect(bucketOf('foobar')).toBe(0xbf9cf968 % 10_000);
  });

  it.each([1, 10, 30, 50, 90])('sends about %i%% of 20,000 callers over gRPC', (share) => {
    const grpc = KEYS.filter((key) => takesGrpc(share, key)).length / KEYS.length;
    // Binomial(20000, p): sd at most 0.36 %; 1.5 points either way is over 4 sd.
    expect(grpc * 100).toBeGreaterThan(share - 1.5);
    expect(grpc * 100).toBeLessThan(share + 1.5);
  });

  it('keeps every caller on one road, and raising the share only moves callers from HTTP to gRPC', () => {
    for (const key of KEYS) expect(takesGrpc(30, key)).toBe(takesGrpc(30, key));
    const shares = [0, 5, 30, 31, 60, 99.99, 100];
    for (const key of KEYS) {
      const roads = shares.map((share) => takesGrpc(share, key));
      const firstGrpc = roads.indexOf(true);
      expect(roads.slice(firstGrpc === -1 ? roads.length : firstGrpc).every(Boolean)).toBe(true);
    }
    expect(KEYS.some((key) => takesGrpc(0, key))).toBe(false);
    expect(KEYS.every((key) => takesGrpc(100, key))).toBe(true);
  });

  it('without a key draws per call', () => {
    expect(takesGrpc(30, undefined, () => 0.2999)).toBe(true);
    expect(takesGrpc(30, undefined, () => 0.3)).toBe(false);
    expect(takesGrpc(0, undefined, () => 0)).toBe(false);
    expect(takesGrpc(100, undefined, () => 0.99999)).toBe(true);
  });
});
