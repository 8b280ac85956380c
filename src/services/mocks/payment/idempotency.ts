import {createHash} from 'node:crypto';
import {TacosError} from '../../errors.js';
import {DEFAULT_IDEMPOTENCY_TTL_MS, PRUNE_BATCH} from '../retention.js';

/**
 * First answers by idempotency key, one key space per method. A failed call is forgotten, so a retry
 * with the same key runs again (nothing happened the first time); a call still running is shared.
 * An answer is kept for `ttlMs` from the first call; after that the key is new again. prune()
 * forgets the expired ones (the map is in the order of first calls, which is the order they expire in).
 */
export class IdempotencyStore {
  private readonly entries = new Map<
    string,
    {fingerprint: string; answer: Promise<object>; storedAt: number; settled: boolean}
  >();

  constructor(
    private readonly ttlMs: number = DEFAULT_IDEMPOTENCY_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** How many answers are kept. */
  get size(): number {
    return this.entries.size;
  }

  run(
    method: string,
    key: unknown,
    request: object,
    produce: () => Promise<object>,
    signal?: AbortSignal,
  ): Promise<object> {
    if (typeof key !== 'string' || key === '') return produce();
    const id = `${method}\u0000${key}`;
    const fingerprint = fingerprintOf(request);
    const now = this.now();
    const existing = this.entries.get(id);
    if (existing && !(existing.settled && this.expired(existing, now))) {
      if (existing.fingerprint !== fingerprint) {
        return Promise.reject(
          new TacosError(`idempotency_key ${JSON.stringify(key)} was already used for a different ${method} request.`, {
            code: 'IDEMPOTENCY_CONFLICT',
          }),
        );
      }
      return untilAborted(existing.answer, signal).then(copy);
    }
    this.entries.delete(id);
    const answer = produce();
    const entry = {fingerprint, answer, storedAt: now, settled: false};
    this.entries.set(id, entry);
    answer.then(
      () => {
        entry.settled = true;
      },
      () => {
        if (this.entries.get(id) === entry) this.entries.delete(id);
      },
    );
    return answer.then(copy);
  }

  /** Forgets up to `limit` answers past their TTL; one still being produced stays (and stops the walk). */
  prune(limit = PRUNE_BATCH): void {
    const now = this.now();
    let removed = 0;
    for (const [id, entry] of this.entries) {
      if (removed >= limit || !entry.settled || !this.expired(entry, now)) break;
      this.entries.delete(id);
      removed++;
    }
  }

  private expired(entry: {storedAt: number}, now: number): boolean {
    return entry.storedAt + this.ttlMs <= now;
  }
}

/**
 * A hash of the request without its key, where a default value counts as absent (proto3 cannot tell
 * them apart, and the HTTP and gRPC doors fill defaults differently from a hand-made object).
 * Hashed, so card details are not kept.
 */
export function fingerprintOf(request: object): string {
  const {idempotency_key: _key, ...rest} = request as Record<string, unknown>;
  return createHash('sha256')
    .update(JSON.stringify(canonical(rest) ?? null))
    .digest('hex');
}

function canonical(value: unknown): unknown {
  if (value === null || value === undefined || value === '' || value === 0 || value === '0' || value === false)
    return undefined;
  if (typeof value === 'string' && value.endsWith('_UNSPECIFIED')) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map((item) => canonical(item) ?? null);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const inner = canonical((value as Record<string, unknown>)[key]);
      if (inner !== undefined) out[key] = inner;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return value;
}

/** A repeat caller waits for the first call's answer, but no longer than its own deadline. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  const gaveUp = () =>
    new TacosError('The caller gave up while the first call with this idempotency_key was still running.', {
      code: 'UPSTREAM_TIMEOUT',
    });
  if (signal.aborted) return Promise.reject(gaveUp());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(gaveUp());
    signal.addEventListener('abort', onAbort, {once: true});
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Each caller gets its own copy, so one cannot change the answer another will be given. */
function copy<T>(value: T): T {
  return structuredClone(value);
}
