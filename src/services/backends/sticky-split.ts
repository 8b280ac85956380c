/** Buckets of the split: a share is given in hundredths of a percent. */
const BUCKETS = 10_000;

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`: stable across processes and versions. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The caller's fixed place in the split, 0..9999. */
export function bucketOf(callerKey: string): number {
  return fnv1a32(callerKey) % BUCKETS;
}

/**
 * Whether a call takes gRPC at `share` percent. A caller with a key always lands in the same bucket,
 * so its calls all take one road and raising the share only moves callers from HTTP to gRPC; without
 * a key each call draws anew.
 */
export function takesGrpc(share: number, callerKey: string | undefined, random: () => number = Math.random): boolean {
  const bucket = callerKey === undefined ? Math.floor(random() * BUCKETS) : bucketOf(callerKey);
  return bucket < share * (BUCKETS / 100);
}
