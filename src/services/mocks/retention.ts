/* How long the mocks keep what they no longer need, and the queue that finds it again. */

/** How long an idempotency_key's first answer is repeated, unless configured otherwise. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;
/** Most records one call removes, so a backlog falling due at once does not stall a single call. */
export const PRUNE_BATCH = 1000;

/**
 * How long a mock remembers what it no longer needs. A long-running mock forgets old records, so
 * its memory stays bounded by the traffic of these windows rather than by its whole life.
 */
export interface Retention {
  /** How long an idempotency_key's first answer is repeated; after that the key is new again. */
  idempotencyTtlMs: number;
  /** How long a finished record (expired, cancelled, released; a failed, cancelled, refunded or expired payment) is kept. */
  finishedMs: number;
  /** How long a confirmed reservation or a completed payment is kept. */
  confirmedMs: number;
}

/** 24 h for idempotency answers, 1 h for finished records, 24 h for confirmed ones. */
export const DEFAULT_RETENTION: Retention = {
  idempotencyTtlMs: DEFAULT_IDEMPOTENCY_TTL_MS,
  finishedMs: 60 * 60_000,
  confirmedMs: 24 * 60 * 60_000,
};

/** The defaults with `given` on top, checked. */
export function retentionOf(given: Partial<Retention> | undefined, check: (message: string) => Error): Retention {
  const retention = {...DEFAULT_RETENTION, ...definedOnly(given ?? {})};
  for (const [name, ms] of Object.entries(retention)) {
    if (!Number.isFinite(ms) || ms <= 0)
      throw check(`The retention ${name} must be a positive number of milliseconds (got ${ms}).`);
  }
  return retention;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined)) as Partial<T>;
}

/**
 * Keys to look at again once their time has come. Each queue is fed with one fixed delay, so keys
 * fall due in about the order they were added: `takeDue` stops at the first key not yet due, which
 * keeps it O(keys taken). A key added again moves to the back with its new time.
 */
export class DueQueue<K> {
  private readonly due = new Map<K, number>();

  constructor(readonly delayMs: number) {}

  get size(): number {
    return this.due.size;
  }

  /** Looks at `key` again `delayMs` after `at`. */
  add(key: K, at: number): void {
    this.due.delete(key);
    this.due.set(key, at + this.delayMs);
  }

  delete(key: K): void {
    this.due.delete(key);
  }

  /** Removes and returns up to `limit` keys due by `now`. */
  takeDue(now: number, limit = PRUNE_BATCH): K[] {
    const taken: K[] = [];
    for (const [key, dueAt] of this.due) {
      if (dueAt > now || taken.length >= limit) break;
      taken.push(key);
    }
    for (const key of taken) this.due.delete(key);
    return taken;
  }
}
