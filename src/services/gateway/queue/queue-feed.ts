import {TacosError, errorMessage} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {Listening, QueueChanges} from './changes.js';
import type {QueueState} from './queue-service.js';
import {eventIdOfWaitingToken} from './tokens.js';

/** One reader of a waiting token's states: a gRPC stream, a WebSocket, an SSE response. */
export interface QueueWatcher {
  readonly waitingToken: string;
  /**
   * The first state, then each change of position, ETA or readiness; one that is not 'waiting' is
   * the last. Called synchronously from subscribe() when the token's state is known already.
   */
  update(state: QueueState): void;
  /** The token is not known (never issued, or forgotten), or its first state could not be read: nothing more comes. */
  fail(error: unknown): void;
}

/** What the feed asks of the queue: one Redis round for many tokens, and when time alone may change a state. */
export interface FeedReader {
  /** The states of these tokens of one event, in their order; undefined for a token Redis does not know. */
  readStates(eventId: string, tokens: string[]): Promise<Array<QueueState | undefined>>;
  /** How long this waiting state may go unread while its queue does not change. */
  idleReadMs(state: QueueState & {status: 'waiting'}): number;
}

export interface FeedSettings {
  heartbeatTtlMs: number;
  /** Watchers (all doors together) one waiting token may have. */
  maxWatchersPerToken: number;
  /** After a failed read, the next one is this much later. */
  retryMs: number;
}

interface Watched {
  /** Replaced, never changed in place: a watcher may leave while its siblings are being called. */
  watchers: readonly QueueWatcher[];
  last?: QueueState;
}

/** Waits for Redis to confirm a subscription this long at most before the first read. */
const SUBSCRIBE_WAIT_MS = 1000;

/**
 * The watchers of waiting tokens in this process, served per event: one Redis read of all the
 * event's watched tokens per burst of changes (not one per watcher), and a message to a watcher
 * only when its token's position, ETA or readiness changed. An event's feed reads
 * - every watched token when its queue changed (pub/sub, through QueueChanges), at most half the
 *   time: the next full read waits as long as the last one took, so a large line paces itself;
 * - new tokens as they come (in one batch while a read is under way);
 * - the tokens near the head when time alone may make them ready (the minimum wait ends, the
 *   admission bucket refills);
 * - every token every third of the heartbeat TTL, which keeps them alive (watching is a heartbeat).
 * There is no timer per watcher: one per event.
 */
export class QueueFeed {
  private readonly events = new Map<string, EventFeed>();

  constructor(
    readonly changes: QueueChanges,
    readonly reader: FeedReader,
    readonly settings: FeedSettings,
    readonly logger: Logger,
  ) {}

  /**
   * Adds a watcher of its token; throws TOKEN_NOT_FOUND for a token that cannot be one, and
   * RATE_LIMITED when the token has as many watchers as allowed.
   */
  subscribe(watcher: QueueWatcher): void {
    const eventId = eventIdOfWaitingToken(watcher.waitingToken);
    if (eventId === undefined) throw tokenNotFound();
    let feed = this.events.get(eventId);
    if (!feed) {
      feed = new EventFeed(eventId, this);
      this.events.set(eventId, feed);
    }
    feed.add(watcher);
  }

  /** Removes a watcher; safe for one that has gone already. */
  unsubscribe(watcher: QueueWatcher): void {
    const eventId = eventIdOfWaitingToken(watcher.waitingToken);
    if (eventId !== undefined) this.events.get(eventId)?.remove(watcher);
  }

  /** Watched tokens in this process, all events together. */
  get watchedTokens(): number {
    let count = 0;
    for (const feed of this.events.values()) count += feed.size;
    return count;
  }

  close(): void {
    for (const feed of [...this.events.values()]) feed.stop();
  }

  /** Called by an event's feed once nobody watches it. */
  forget(eventId: string, feed: EventFeed): void {
    if (this.events.get(eventId) === feed) this.events.delete(eventId);
  }
}

class EventFeed {
  private readonly tokens = new Map<string, Watched>();
  /** Tokens not read yet. */
  private readonly fresh = new Set<string>();
  /** Tokens whose state time alone may change before the next heartbeat read; read together at headAt. */
  private readonly head = new Set<string>();
  private headAt = Infinity;
  /** The next read of every token, for heartbeats (or after a failure). */
  private refreshAt: number;
  /** The queue changed since the last full read. */
  private changed = false;
  /** No full read for a change before then (pacing: see the class). */
  private fullReadNotBefore = 0;
  private reading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private readonly listening: Listening;
  private readonly subscribed: Promise<void>;

  constructor(
    private readonly eventId: string,
    private readonly feed: QueueFeed,
  ) {
    this.refreshAt = Date.now() + this.refreshMs;
    this.listening = feed.changes.listen(eventId, () => {
      this.changed = true;
      void this.pump();
    });
    // The first read waits for the subscription, or a change in between would be missed.
    this.subscribed = settledWithin(this.listening.subscribed, SUBSCRIBE_WAIT_MS);
  }

  get size(): number {
    return this.tokens.size;
  }

  private get refreshMs(): number {
    return this.feed.settings.heartbeatTtlMs / 3;
  }

  add(watcher: QueueWatcher): void {
    const token = watcher.waitingToken;
    const watched = this.tokens.get(token);
    if (!watched) {
      this.tokens.set(token, {watchers: [watcher]});
      this.fresh.add(token);
      void this.pump();
      return;
    }
    const max = this.feed.settings.maxWatchersPerToken;
    if (watched.watchers.length >= max) throw tooManyWatchers(max);
    watched.watchers = [...watched.watchers, watcher];
    if (watched.last) watcher.update(watched.last);
  }

  remove(watcher: QueueWatcher): void {
    const token = watcher.waitingToken;
    const watched = this.tokens.get(token);
    if (!watched) return;
    watched.watchers = watched.watchers.filter((other) => other !== watcher);
    if (watched.watchers.length === 0) this.drop(token);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.listening.stop();
    this.feed.forget(this.eventId, this);
  }

  private drop(token: string): void {
    this.tokens.delete(token);
    this.fresh.delete(token);
    this.head.delete(token);
    if (this.tokens.size === 0) this.stop();
  }

  /** Reads while there is something to read; one read at a time per event. */
  private async pump(): Promise<void> {
    if (this.reading || this.stopped) return;
    this.reading = true;
    try {
      await this.subscribed;
      for (let tokens = this.nextRead(); tokens && !this.stopped; tokens = this.nextRead()) {
        if (!(await this.read(tokens))) break;
      }
    } finally {
      this.reading = false;
      this.schedule();
    }
  }

  /** The tokens the next read is for, or undefined when none is due now. */
  private nextRead(): string[] | undefined {
    const now = Date.now();
    if ((this.changed && now >= this.fullReadNotBefore) || now >= this.refreshAt) {
      this.changed = false;
      this.fresh.clear();
      this.head.clear();
      this.headAt = Infinity;
      this.refreshAt = now + this.refreshMs;
      return [...this.tokens.keys()];
    }
    if (this.fresh.size > 0) {
      const tokens = [...this.fresh];
      this.fresh.clear();
      return tokens;
    }
    if (now >= this.headAt) {
      const tokens = [...this.head];
      this.head.clear();
      this.headAt = Infinity;
      return tokens;
    }
    return undefined;
  }

  /** Reads the tokens and tells their watchers what changed; false when the read failed. */
  private async read(tokens: string[]): Promise<boolean> {
    const started = Date.now();
    let states: Array<QueueState | undefined>;
    try {
      states = await this.feed.reader.readStates(this.eventId, tokens);
    } catch (error) {
      this.feed.logger.warn({event_id: this.eventId, err: errorMessage(error)}, 'queue feed read failed; retrying');
      for (const token of tokens) {
        const watched = this.tokens.get(token);
        // Watchers with a state keep it until a read succeeds; the others are told now.
        if (watched && !watched.last) this.end(token, watched, error);
      }
      this.refreshAt = Math.min(this.refreshAt, Date.now() + this.feed.settings.retryMs);
      return false;
    }
    if (this.stopped) return true;
    const now = Date.now();
    if (tokens.length === this.tokens.size) this.fullReadNotBefore = now + (now - started);
    const refreshMs = this.refreshMs;
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index];
      const watched = this.tokens.get(token);
      // Gone while the read was under way.
      if (!watched) continue;
      const state = states[index];
      if (state === undefined) {
        this.end(token, watched, tokenNotFound());
        continue;
      }
      if (!sameState(watched.last, state)) {
        watched.last = state;
        for (const watcher of watched.watchers) watcher.update(state);
      }
      if (state.status !== 'waiting') {
        this.drop(token);
        continue;
      }
      const idleMs = this.feed.reader.idleReadMs(state);
      if (idleMs < refreshMs) {
        this.head.add(token);
        this.headAt = Math.min(this.headAt, now + idleMs);
      }
    }
    return true;
  }

  private end(token: string, watched: Watched, error: unknown): void {
    this.drop(token);
    for (const watcher of watched.watchers) watcher.fail(error);
  }

  /** One timer per event: the next heartbeat read, head read or paced full read. */
  private schedule(): void {
    if (this.stopped) return;
    const at = Math.min(this.refreshAt, this.headAt, this.changed ? this.fullReadNotBefore : Infinity);
    if (this.timer && this.timerAt === at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        void this.pump();
      },
      Math.max(0, at - Date.now()),
    );
    this.timer.unref();
  }
}

/** What a watcher sees: the time a state was read at does not make it new. */
function sameState(last: QueueState | undefined, state: QueueState): boolean {
  if (!last || last.status !== state.status) return false;
  if (last.status !== 'waiting' || state.status !== 'waiting') return true;
  return (
    last.position === state.position &&
    last.etaSeconds === state.etaSeconds &&
    last.admissionReady === state.admissionReady
  );
}

/** Waits for `promise` to settle, but no longer than `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

export function tokenNotFound(): TacosError {
  return new TacosError('No such waiting token: it was never issued or has been forgotten.', {
    code: 'TOKEN_NOT_FOUND',
    hint: 'Join the queue again to get a new waiting token.',
  });
}

function tooManyWatchers(max: number): TacosError {
  return new TacosError(`This waiting token already has ${max} open update streams, the most one token may hold.`, {
    code: 'RATE_LIMITED',
    hint: 'Close a stream you no longer read before opening another.',
  });
}
