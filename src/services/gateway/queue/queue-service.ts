import {createHash} from 'node:crypto';
import {ReplyError} from 'ioredis';
import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError, errorMessage} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {QueueChanges} from './changes.js';
import {QueueFeed, tokenNotFound, type FeedReader, type QueueWatcher} from './queue-feed.js';
import {QueueMetrics} from './queue-metrics.js';
import {EVENTS_KEY, OPEN_EVENTS_KEY, assertEventId, idempotencyClaimKey, queueKeys} from './keys.js';
import * as scripts from './scripts.js';
import {eventIdOfReservationToken, eventIdOfWaitingToken, newReservationToken, newWaitingToken} from './tokens.js';

export interface QueueSettings {
  /** A waiting token not polled for this long expires. */
  heartbeatTtlMs: number;
  /** How long a token that ended (entered, left, expired) still answers with its state. */
  retentionMs: number;
  /** Positions up to this may enter at once. */
  instantPositions: number;
  /** Positions above this are refused. */
  maxAdmissionPosition: number;
  /** Between the two: the minimum time since joining before entry... */
  minWaitMs: number;
  /** ...and a token bucket per event. */
  admissionBurst: number;
  admissionRatePerSecond: number;
  reservationTokenTtlMs: number;
  idempotencyTtlMs: number;
  /** How often expired heartbeats are swept, and how often a watcher re-reads its position. */
  sweepIntervalMs: number;
  /** Events that always take joins (QUEUE_EVENTS and the catalogue's). */
  events: readonly string[];
  /** Development: an unknown event id opens itself (within maxOpenEvents); elsewhere it is refused. */
  openUnknownEvents: boolean;
  /** Events opened at run time (by a join in development, or an admin's call), at most, at once. */
  maxOpenEvents: number;
  /** A join not stored by then (or by the caller's own deadline, if sooner) is not stored at all. */
  joinTimeoutMs: number;
  /**
   * A caller's deadline is moved this much earlier: a join stored at the last moment could not be
   * answered in time (a gRPC call of 1-5 ms would be told DEADLINE_EXCEEDED and yet be stored).
   */
  deadlineMarginMs: number;
  /** Most events one stats page lists. */
  statsPageSize: number;
  /** Open update streams (gRPC, WebSocket and SSE together) one waiting token may have. */
  maxWatchersPerToken: number;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  heartbeatTtlMs: 300_000,
  retentionMs: 600_000,
  instantPositions: 10,
  maxAdmissionPosition: 100,
  minWaitMs: 5000,
  admissionBurst: 20,
  admissionRatePerSecond: 10,
  reservationTokenTtlMs: 30_000,
  idempotencyTtlMs: 600_000,
  sweepIntervalMs: 1000,
  events: [],
  openUnknownEvents: true,
  maxOpenEvents: 1000,
  joinTimeoutMs: 800,
  deadlineMarginMs: 5,
  statsPageSize: 100,
  maxWatchersPerToken: 4,
};

export interface JoinRequest {
  eventId: string;
  userId: string;
  sessionId: string;
  idempotencyKey?: string;
  /** The caller's own deadline (Unix ms), e.g. a gRPC deadline; the join is not stored after it. */
  deadline?: number;
  /** True once the caller has gone (cancelled, disconnected): its join is not sent. */
  cancelled?: () => boolean;
}

export interface JoinResult {
  waitingToken: string;
  position: number;
  etaSeconds: number;
  joinedAt: number;
  expiresAt: number;
  /** True when an Idempotency-Key repeated an earlier join: this is that join's answer. */
  replayed: boolean;
}

export type QueueState =
  | {
      status: 'waiting';
      waitingToken: string;
      eventId: string;
      position: number;
      etaSeconds: number;
      waitingSeconds: number;
      /** Enter would be granted now. */
      admissionReady: boolean;
      expiresAt: number;
    }
  | {status: 'admitted' | 'left' | 'expired'; waitingToken: string; eventId: string; waitingSeconds: number};

export type EnterResult =
  | {outcome: 'granted'; reservationToken: string; ttlSeconds: number; validUntil: number; position: number}
  | {outcome: 'denied'; position: number; reason: 'position' | 'wait' | 'rate'; retryAfterMs: number; message: string}
  | {outcome: 'expired' | 'left'};

/** Ready means: enter would be granted now, or the token has entered already. */
export function isAdmissionReady(state: QueueState): boolean {
  return state.status === 'admitted' || (state.status === 'waiting' && state.admissionReady);
}

/** One event's counts as both doors send them (gateway.v1.EventQueueStats field names). */
export function eventStatsMessage(event: EventQueueStats) {
  return {
    event_id: event.eventId,
    total_waiting: event.waiting,
    total_admitted: event.admitted,
    admission_rate_per_minute: event.admittedLastMinute,
    average_wait_time_seconds: event.averageWaitSeconds,
  };
}

export interface ConsumedReservationToken {
  /** The event the token was issued for: the reservation is made for it. */
  eventId: string;
  restore(): Promise<void>;
}

export interface EventQueueStats {
  eventId: string;
  waiting: number;
  admitted: number;
  admittedLastMinute: number;
  averageWaitSeconds: number;
}

/** One page of the events with waiting tokens; `nextCursor` is undefined on the last. */
export interface EventQueueStatsPage {
  events: EventQueueStats[];
  nextCursor?: string;
  /** Events with waiting tokens, on every page. */
  activeEvents: number;
}

type ScriptName = keyof typeof scripts;

/** How long this process trusts what it learnt about an event being open, before asking Redis again. */
const OPEN_CHECK_MS = 10_000;
/** Tokens one FEED script call reads: a large line is read in several short calls, so Redis serves others between them. */
const FEED_BATCH = 1000;
/** Events swept by one batch of script calls. */
const SWEEP_BATCH = 100;
/** Longest an admin's call opens an event for. */
export const MAX_OPEN_FOR_MS = 30 * 24 * 3_600_000;
const MAX_ID_LENGTH = 128;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The same limits whichever door a join came through. */
function assertJoinRequest(request: JoinRequest): void {
  assertEventId(request.eventId);
  if (request.userId.length > MAX_ID_LENGTH)
    throw invalidArgument('user_id', `user_id must be at most ${MAX_ID_LENGTH} characters.`);
  if (request.sessionId.length > MAX_ID_LENGTH)
    throw invalidArgument('session_id', `session_id must be at most ${MAX_ID_LENGTH} characters.`);
  if (request.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(request.idempotencyKey)) {
    throw invalidArgument('Idempotency-Key', 'Idempotency-Key must be 1-255 visible ASCII characters.');
  }
}
type ScriptReply = Array<string | number>;

/**
 * The waiting room, one sorted set per event in Redis. REST and gRPC both call this class, so a
 * queue operation behaves the same whichever door it came through.
 */
export class QueueService implements FeedReader {
  /** The process's watchers of waiting tokens (gRPC streams, WebSockets, SSE), one Redis read per event per change. */
  readonly feed: QueueFeed;
  /** Registered on the gateway's /metrics by the gateway. */
  readonly metrics: QueueMetrics;
  private readonly fixedEvents: ReadonlySet<string>;
  /** Until when (ms) this process takes an event opened at run time as open without asking Redis. */
  private readonly openUntil = new Map<string, number>();
  private sweepTimer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly settings: QueueSettings,
    private readonly logger: Logger,
  ) {
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, {lua});
    this.fixedEvents = new Set(settings.events);
    // A Redis that comes back may be a new one: ask it again which events are open.
    redis.on('ready', () => this.openUntil.clear());
    this.feed = new QueueFeed(
      new QueueChanges(redis, logger),
      this,
      {heartbeatTtlMs: settings.heartbeatTtlMs, maxWatchersPerToken: settings.maxWatchersPerToken, retryMs: 1000},
      logger,
    );
    this.metrics = new QueueMetrics(redis, logger);
  }

  /**
   * Starts sweeping expired heartbeats, so positions move up on time and not only when touched. One
   * sweep at a time: the next is scheduled when the last has finished.
   */
  start(): void {
    if (this.sweepTimer || this.closed) return;
    const next = () => {
      this.sweepTimer = setTimeout(() => {
        this.sweeping = this.sweep().finally(() => {
          this.sweeping = undefined;
          if (!this.closed) next();
        });
      }, this.settings.sweepIntervalMs);
      this.sweepTimer.unref();
    };
    next();
  }

  /** Stops sweeping (waiting for a sweep under way) and the change listener; safe twice. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    this.feed.close();
    this.feed.changes.close();
    await this.sweeping;
  }

  /**
   * Joins the event's line. The join is stored by its deadline (the caller's, or joinTimeoutMs from
   * now, whichever is sooner) or not at all, so an answer that says it failed is true; when Redis
   * may have taken the join but its answer did not come in time, the join is withdrawn, and only a
   * withdrawal that is not answered either makes the answer "outcome unknown".
   */
  async join(request: JoinRequest): Promise<JoinResult> {
    assertJoinRequest(request);
    const deadline = Math.min(
      (request.deadline ?? Infinity) - this.settings.deadlineMarginMs,
      Date.now() + this.settings.joinTimeoutMs,
    );
    const keys = queueKeys(request.eventId);
    const idempotencyKey = request.idempotencyKey;
    // The script compares it only with a key stored under an Idempotency-Key.
    const requestHash = idempotencyKey === undefined ? '' : hashJoin(request);
    if (idempotencyKey !== undefined) {
      assertSendable(request, deadline);
      await this.claimIdempotencyKey(idempotencyKey, requestHash);
    }
    await this.assertOpen(request, deadline);
    assertSendable(request, deadline);
    const token = newWaitingToken(request.eventId);
    const tokenTtl = this.settings.heartbeatTtlMs + this.settings.retentionMs;
    const scriptKeys = [keys.seq, keys.waiting, keys.heartbeat, keys.token(token)];
    if (idempotencyKey !== undefined) scriptKeys.push(keys.idempotency(idempotencyKey));
    let reply: ScriptReply;
    try {
      reply = await this.run('JOIN', scriptKeys, [
        token,
        request.userId,
        request.sessionId,
        tokenTtl,
        requestHash,
        this.settings.idempotencyTtlMs,
        this.settings.heartbeatTtlMs,
        Number.isFinite(deadline) ? Math.floor(deadline) : Number.MAX_SAFE_INTEGER,
        this.lineTtlMs(),
      ]);
    } catch (error) {
      if (!isTimeout(error)) throw error;
      const withdrawKeys = [keys.waiting, keys.heartbeat, keys.token(token), ...scriptKeys.slice(4)];
      // Withdrawn for sure: the answer "not stored" is true. Otherwise the withdrawal is still queued behind the join.
      throw await this.run('WITHDRAW', withdrawKeys, [token, keys.changes]).then(
        () => notStored(),
        () => outcomeUnknown(idempotencyKey !== undefined),
      );
    }
    if (reply[0] === 'late') throw notStored();
    if (reply[0] === 'replay') {
      const [storedHash, storedToken, position, joinedAt] = String(reply[1]).split('|');
      if (storedHash !== requestHash) throw idempotencyConflict();
      return this.joinResult(storedToken, Number(position), Number(joinedAt), true);
    }
    const position = Number(reply[2]);
    const joinedAt = Number(reply[3]);
    // The first in line puts the event in the registry, due when its heartbeat is (see sweep()).
    // The join is stored whatever happens to this: a failure is logged, not answered as the join's.
    if (position === 1) {
      await this.register(request.eventId, joinedAt + this.settings.heartbeatTtlMs, '').catch((error: unknown) => {
        this.logger.warn(
          {event_id: request.eventId, err: errorMessage(error)},
          'queue registry not updated: the event is swept when its keys expire',
        );
      });
    }
    return this.joinResult(String(reply[1]), position, joinedAt, false);
  }

  /**
   * Opens an event for joins until `openForMs` from now (an admin's call); refused when as many
   * events as allowed are open. Returns when it closes (ms).
   */
  async openEvent(eventId: string, openForMs: number): Promise<number> {
    assertEventId(eventId);
    if (!(openForMs > 0 && openForMs <= MAX_OPEN_FOR_MS)) {
      throw invalidArgument('open_for_sec', `open_for_sec must be from 1 to ${MAX_OPEN_FOR_MS / 1000}.`);
    }
    return this.open(eventId, openForMs);
  }

  /** The token's state; a waiting token's heartbeat is refreshed (a status call is a sign of life). */
  async status(waitingToken: string): Promise<QueueState> {
    const eventId = this.eventOf(waitingToken);
    const keys = queueKeys(eventId);
    const {heartbeatTtlMs, retentionMs, admissionBurst, admissionRatePerSecond} = this.settings;
    const reply = await this.run(
      'STATUS',
      [keys.waiting, keys.heartbeat, keys.token(waitingToken), keys.bucket, keys.seq],
      [waitingToken, heartbeatTtlMs, retentionMs, keys.changes, admissionBurst, admissionRatePerSecond],
    );
    const state = String(reply[0]);
    if (state === 'unknown') throw tokenNotFound();
    const [position, joinedAt, now, bucketLevel] = reply.slice(1).map(Number);
    return this.stateOf(waitingToken, eventId, state, position, joinedAt, now, bucketLevel, now + heartbeatTtlMs);
  }

  /**
   * The states of many tokens of one event (queue-feed.ts), as status() tells them but without
   * moving every heartbeat: FEED refreshes only those that need it.
   */
  async readStates(eventId: string, tokens: string[]): Promise<Array<QueueState | undefined>> {
    const keys = queueKeys(eventId);
    const s = this.settings;
    const batches: Array<Promise<Array<QueueState | undefined>>> = [];
    for (let start = 0; start < tokens.length; start += FEED_BATCH) {
      const batch = tokens.slice(start, start + FEED_BATCH);
      batches.push(
        this.run(
          'FEED',
          [keys.waiting, keys.heartbeat, keys.bucket, keys.seq],
          [
            keys.tokenPrefix,
            s.heartbeatTtlMs,
            s.retentionMs,
            keys.changes,
            s.admissionBurst,
            s.admissionRatePerSecond,
            ...batch,
          ],
        ).then((reply) => {
          const [now, bucketLevel] = [Number(reply[0]), Number(reply[1])];
          return batch.map((token, index) => {
            const at = 2 + index * 4;
            const state = String(reply[at]);
            if (state === 'unknown') return undefined;
            const [position, joinedAt, deadline] = [
              Number(reply[at + 1]),
              Number(reply[at + 2]),
              Number(reply[at + 3]),
            ];
            return this.stateOf(token, eventId, state, position, joinedAt, now, bucketLevel, deadline);
          });
        }),
      );
    }
    return (await Promise.all(batches)).flat();
  }

  /** A token's state from what a script read: ETA and readiness are worked out here, from Redis's clock. */
  private stateOf(
    waitingToken: string,
    eventId: string,
    state: string,
    position: number,
    joinedAt: number,
    now: number,
    bucketLevel: number,
    expiresAt: number,
  ): QueueState {
    const waitingSeconds = Math.max(0, Math.floor((now - joinedAt) / 1000));
    if (state !== 'waiting') {
      return {status: state as 'admitted' | 'left' | 'expired', waitingToken, eventId, waitingSeconds};
    }
    return {
      status: 'waiting',
      waitingToken,
      eventId,
      position,
      etaSeconds: this.etaSeconds(position, now - joinedAt),
      waitingSeconds,
      admissionReady: this.wouldAdmit(position, now - joinedAt, bucketLevel / 1000),
      expiresAt,
    };
  }

  async enter(waitingToken: string): Promise<EnterResult> {
    const eventId = this.eventOf(waitingToken);
    const keys = queueKeys(eventId);
    const s = this.settings;
    const reservationToken = newReservationToken(eventId);
    const reply = await this.run(
      'ENTER',
      [
        keys.waiting,
        keys.heartbeat,
        keys.token(waitingToken),
        keys.bucket,
        keys.admits,
        keys.stats,
        keys.reservationToken(reservationToken),
      ],
      [
        waitingToken,
        s.retentionMs,
        keys.changes,
        s.instantPositions,
        s.maxAdmissionPosition,
        s.minWaitMs,
        s.admissionBurst,
        s.admissionRatePerSecond,
        s.reservationTokenTtlMs,
        waitingToken,
      ],
    );
    switch (reply[0]) {
      case 'granted':
        this.metrics.admissions.inc({event_id: eventId});
        return {
          outcome: 'granted',
          reservationToken,
          ttlSeconds: Math.round(s.reservationTokenTtlMs / 1000),
          validUntil: Number(reply[2]) + s.reservationTokenTtlMs,
          position: Number(reply[1]),
        };
      case 'denied': {
        const position = Number(reply[1]);
        const reason = reply[2] as 'position' | 'wait' | 'rate';
        const retryAfterMs = reason === 'position' ? this.etaSeconds(position) * 1000 : Number(reply[3]);
        return {outcome: 'denied', position, reason, retryAfterMs, message: denialMessage(position, reason, s)};
      }
      case 'admitted':
        throw new TacosError('This waiting token has already been used to enter.', {
          code: 'ALREADY_ADMITTED',
          hint: 'Use the reservation token you were given, or join the queue again.',
        });
      case 'expired':
      case 'left':
        return {outcome: reply[0]};
      default:
        throw tokenNotFound();
    }
  }

  /** Leaves the queue at once; leaving twice is fine. */
  async leave(waitingToken: string): Promise<{leftAt: number}> {
    const keys = queueKeys(this.eventOf(waitingToken));
    const reply = await this.run(
      'LEAVE',
      [keys.waiting, keys.heartbeat, keys.token(waitingToken)],
      [waitingToken, this.settings.retentionMs, keys.changes],
    );
    if (reply[0] === 'unknown') throw tokenNotFound();
    return {leftAt: Number(reply[2])};
  }

  /** One event's counts. */
  async stats(eventId: string): Promise<EventQueueStats> {
    assertEventId(eventId);
    const keys = queueKeys(eventId);
    const [waiting, admitted, waitMs, lastMinute] = (
      await this.run('STATS', [keys.waiting, keys.stats, keys.admits], [])
    ).map(Number);
    return {
      eventId,
      waiting,
      admitted,
      admittedLastMinute: lastMinute,
      averageWaitSeconds: admitted > 0 ? Math.round(waitMs / admitted / 1000) : 0,
    };
  }

  /**
   * The counts of the events with waiting tokens, a page at a time (about `limit`, as Redis's ZSCAN
   * COUNT gives them), from `cursor` ('0' or none for the first page).
   */
  async statsPage(cursor = '0', limit = this.settings.statsPageSize): Promise<EventQueueStatsPage> {
    if (!/^\d{1,20}$/.test(cursor))
      throw invalidArgument('cursor', 'cursor must be the next_cursor of the page before.');
    if (!Number.isInteger(limit) || limit < 1 || limit > this.settings.statsPageSize) {
      throw invalidArgument('limit', `limit must be from 1 to ${this.settings.statsPageSize}.`);
    }
    const [[next, members], activeEvents] = await Promise.all([
      this.guard(() => this.redis.zscan(EVENTS_KEY, cursor, 'COUNT', limit)),
      this.guard(() => this.redis.zcard(EVENTS_KEY)),
    ]);
    // ZSCAN gives member, score, member, score...: about `limit` members (a set of up to 128 comes whole).
    const ids = members.filter((_, index) => index % 2 === 0).sort();
    const events = await Promise.all(ids.map((id) => this.stats(id)));
    return {events, nextCursor: next === '0' ? undefined : next, activeEvents};
  }

  /**
   * Takes a reservation token: once, for the event it was issued for (which it names); undefined when
   * it is unknown, used or older than its 30 s. `restore` gives it back with the time it had left (for
   * a reservation that failed for reasons not the user's).
   */
  async consumeReservationToken(reservationToken: string): Promise<ConsumedReservationToken | undefined> {
    const eventId = eventIdOfReservationToken(reservationToken);
    if (eventId === undefined) return undefined;
    const key = queueKeys(eventId).reservationToken(reservationToken);
    const [value, ttlMs] = await this.run('TAKE', [key], []);
    if (value === '') return undefined;
    return {
      eventId,
      restore: () =>
        this.guard(() => this.redis.set(key, value, 'PX', Math.max(1, Number(ttlMs)), 'NX')).then(() => undefined),
    };
  }

  /**
   * The token's state now and after every change (position, ETA, readiness), ending when the token
   * is admitted, left or expired, or when `signal` aborts; a reader slower than the changes gets the
   * newest state, not each one. Served by the feed (queue-feed.ts): watchers of one event share its
   * Redis reads, and watching counts as a heartbeat.
   */
  async *watch(waitingToken: string, signal: AbortSignal): AsyncGenerator<QueueState> {
    const watcher = new LatestState(waitingToken);
    this.feed.subscribe(watcher);
    const abort = () => watcher.wake?.();
    signal.addEventListener('abort', abort);
    try {
      for (let state = await watcher.next(signal); state; state = await watcher.next(signal)) {
        yield state;
        if (state.status !== 'waiting') return;
      }
    } finally {
      signal.removeEventListener('abort', abort);
      this.feed.unsubscribe(watcher);
    }
  }

  /** How long a watcher of this waiting state may go unread when nothing in its queue changes. */
  idleReadMs(state: QueueState & {status: 'waiting'}): number {
    const s = this.settings;
    const heartbeat = s.heartbeatTtlMs / 3;
    if (state.admissionReady || state.position > s.maxAdmissionPosition) return heartbeat;
    const waitLeftMs = s.minWaitMs - state.waitingSeconds * 1000;
    if (state.position > s.instantPositions && waitLeftMs > 0) return Math.min(heartbeat, waitLeftMs);
    // Allowed in but for the admission bucket, which refills with time: look again when a token may be back.
    return Math.min(heartbeat, Math.max(s.sweepIntervalMs, 1000 / s.admissionRatePerSecond));
  }

  /**
   * One sweep: only the events whose earliest heartbeat deadline has come (the registry holds each
   * event with waiting tokens, due at that deadline), a batch at a time. Expired heartbeats leave the
   * line; an event with nobody left waiting leaves the registry (its keys expire on their own), the
   * others are due again at their next deadline. So an idle gateway sends about one command a
   * sweep, however many events it has seen. Errors are logged; the next sweep tries again.
   */
  async sweep(): Promise<void> {
    while (!this.closed) {
      let due: string[];
      try {
        due = await this.redis.zrangebyscore(EVENTS_KEY, '-inf', Date.now(), 'WITHSCORES', 'LIMIT', 0, SWEEP_BATCH);
      } catch (error) {
        this.logger.debug({err: errorMessage(error)}, 'queue sweep skipped: Redis unavailable');
        return;
      }
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < due.length; i += 2) {
        const [eventId, score] = [due[i], due[i + 1]];
        batch.push(
          this.sweepEvent(eventId, score).catch((error: unknown) => {
            // One event's failure must not stop the others' lines from moving.
            this.logger.warn({event_id: eventId, err: errorMessage(error)}, 'queue sweep of an event failed');
          }),
        );
      }
      await Promise.all(batch);
      if (due.length < SWEEP_BATCH * 2) return;
    }
  }

  /** Expires the event's stale heartbeats; then it is due again at its next deadline, or leaves the registry. */
  private async sweepEvent(eventId: string, score: string): Promise<void> {
    const keys = queueKeys(eventId);
    const [, waiting, next] = (await this.run('SWEEP', [keys.waiting, keys.heartbeat], [keys.changes, 1000])).map(
      Number,
    );
    // Removed only if no join registered it again meanwhile (a first joiner writes another score).
    if (waiting === 0) await this.run('UNREGISTER', [EVENTS_KEY], [eventId, score]);
    // A token with no heartbeat entry (left behind by a crash) is looked at again after a heartbeat time.
    else await this.register(eventId, next >= 0 ? next : Date.now() + this.settings.heartbeatTtlMs, 'XX');
  }

  private register(eventId: string, dueAt: number, mode: '' | 'XX'): Promise<ScriptReply> {
    return this.run('REGISTER', [EVENTS_KEY], [eventId, dueAt, this.lineTtlMs(), mode]);
  }

  /** How long an event's line keys live after its last sign of life: a heartbeat time and the retention. */
  private lineTtlMs(): number {
    return this.settings.heartbeatTtlMs + this.settings.retentionMs;
  }

  /**
   * Refuses a join to an event that is not open: one of the fixed events, one an admin opened, or
   * (development) one that opens itself now, while fewer than maxOpenEvents are open.
   */
  private async assertOpen(request: JoinRequest, deadline: number): Promise<void> {
    const {eventId} = request;
    if (this.fixedEvents.has(eventId)) return;
    const now = Date.now();
    if ((this.openUntil.get(eventId) ?? 0) > now) return;
    assertSendable(request, deadline);
    let until: number;
    if (this.settings.openUnknownEvents) {
      until = await this.open(eventId, this.lineTtlMs());
    } else {
      const score = await this.guard(() => this.redis.zscore(OPEN_EVENTS_KEY, eventId));
      until = score === null ? 0 : Number(score);
      if (until <= now) throw eventNotOpen(eventId);
    }
    // Bounded like the open set itself: past entries are dropped when it grows beyond it.
    if (this.openUntil.size >= this.settings.maxOpenEvents * 2) this.openUntil.clear();
    this.openUntil.set(eventId, Math.min(until, now + OPEN_CHECK_MS));
  }

  private async open(eventId: string, openForMs: number): Promise<number> {
    const [opened, value] = (
      await this.run('OPEN', [OPEN_EVENTS_KEY], [eventId, openForMs, this.settings.maxOpenEvents])
    ).map(Number);
    if (opened !== 1) throw tooManyEvents(eventId, value);
    return value;
  }

  private joinResult(waitingToken: string, position: number, joinedAt: number, replayed: boolean): JoinResult {
    return {
      waitingToken,
      position,
      etaSeconds: this.etaSeconds(position, Date.now() - joinedAt),
      joinedAt,
      expiresAt: joinedAt + this.settings.heartbeatTtlMs,
      replayed,
    };
  }

  /**
   * Seconds until entry, as the admission rate and, when `waitedMs` (how long the token has waited)
   * is known, the minimum wait tell: a position above the instant ones enters no sooner than both.
   */
  private etaSeconds(position: number, waitedMs?: number): number {
    const ahead = position - this.settings.instantPositions;
    if (ahead <= 0) return 0;
    const byRate = Math.ceil(ahead / this.settings.admissionRatePerSecond);
    return waitedMs === undefined ? byRate : Math.max(byRate, Math.ceil((this.settings.minWaitMs - waitedMs) / 1000));
  }

  /** What ENTER would say now, without taking a bucket token. */
  private wouldAdmit(position: number, waitedMs: number, bucketLevel: number): boolean {
    const s = this.settings;
    if (position > s.maxAdmissionPosition || bucketLevel < 1) return false;
    return position <= s.instantPositions || waitedMs >= s.minWaitMs;
  }

  private eventOf(waitingToken: string): string {
    const eventId = eventIdOfWaitingToken(waitingToken);
    if (eventId === undefined) throw tokenNotFound();
    return eventId;
  }

  /**
   * Claims an Idempotency-Key for this request before joining, so the same key cannot be used for
   * another request (another event included), even by calls that arrive at the same moment.
   */
  private async claimIdempotencyKey(key: string, requestHash: string): Promise<void> {
    const claimKey = idempotencyClaimKey(key);
    const claimed = await this.guard(() =>
      this.redis.set(claimKey, requestHash, 'PX', this.settings.idempotencyTtlMs, 'NX'),
    );
    if (claimed !== null) return;
    const stored = await this.guard(() => this.redis.get(claimKey));
    if (stored !== null && stored !== requestHash) throw idempotencyConflict();
  }

  private run(name: ScriptName, keys: string[], args: Array<string | number>): Promise<ScriptReply> {
    const command = (
      this.redis as unknown as Record<string, (...params: Array<string | number>) => Promise<ScriptReply>>
    )[name];
    return this.guard(() => command.call(this.redis, keys.length, ...keys, ...args));
  }

  /** Redis being away is the caller's 503 / UNAVAILABLE; a script bug is ours. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof TacosError) throw error;
      // A script that fails is our bug; other refusals (READONLY, max clients, LOADING) are Redis being unavailable.
      if (
        error instanceof ReplyError &&
        /^(ERR (Error running script|user_script)|WRONGTYPE)/.test(errorMessage(error))
      ) {
        throw new TacosError(`The queue store failed: ${errorMessage(error)}`, {code: 'INTERNAL', cause: error});
      }
      throw new TacosError('The queue store (Redis) is unavailable; try again shortly.', {
        code: 'UNAVAILABLE',
        hint: 'Check that Redis answers at REDIS_ADDRESS; the gateway reconnects on its own.',
        cause: error,
      });
    }
  }
}

function hashJoin(request: JoinRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([request.eventId, request.userId, request.sessionId]))
    .digest('base64url');
}

/** A join whose caller has gone or whose deadline has passed is not sent: nothing would read its answer. */
function assertSendable(request: JoinRequest, deadline: number): void {
  if (request.cancelled?.()) throw new TacosError('The caller went away; the join was not made.', {code: 'CANCELLED'});
  if (Date.now() > deadline) throw notStored();
}

/** ioredis's own timeout: the command was sent, and may have run. */
function isTimeout(error: unknown): boolean {
  return error instanceof TacosError && error.cause instanceof Error && error.cause.message === 'Command timed out';
}

function notStored(): TacosError {
  return new TacosError('The queue store did not take the join in time; it was not stored. Try again.', {
    code: 'UNAVAILABLE',
  });
}

function outcomeUnknown(withKey: boolean): TacosError {
  const next = withKey
    ? 'Retry with the same Idempotency-Key: it returns the join if it was stored, or joins now.'
    : 'Send an Idempotency-Key with joins, so that a retry can tell.';
  return new TacosError(`The queue store did not answer in time: the join may or may not have been stored. ${next}`, {
    code: 'OUTCOME_UNKNOWN',
  });
}

function eventNotOpen(eventId: string): TacosError {
  return new TacosError(
    `The event "${eventId}" takes no joins here: it is not in the catalogue or QUEUE_EVENTS, and no admin has opened it (POST /api/v1/queue/events).`,
    {code: 'EVENT_NOT_OPEN', field: 'event_id'},
  );
}

function tooManyEvents(eventId: string, open: number): TacosError {
  return new TacosError(
    `The event "${eventId}" cannot be opened: ${open} events are open, the most QUEUE_MAX_OPEN_EVENTS allows. Use an open event, list the event in QUEUE_EVENTS, or wait until idle events close.`,
    {code: 'TOO_MANY_EVENTS', field: 'event_id'},
  );
}

function idempotencyConflict(): TacosError {
  return new TacosError('This Idempotency-Key was already used with a different request.', {
    code: 'IDEMPOTENCY_CONFLICT',
    hint: 'Use a new Idempotency-Key for a different request.',
  });
}

function denialMessage(position: number, reason: 'position' | 'wait' | 'rate', s: QueueSettings): string {
  if (reason === 'position')
    return `Not your turn yet: position ${position}; entry opens at position ${s.maxAdmissionPosition}.`;
  if (reason === 'wait')
    return `Not your turn yet: position ${position} may enter ${Math.round(s.minWaitMs / 1000)} s after joining.`;
  return `Not your turn yet: position ${position}; admissions are metered, try again shortly.`;
}

/** A watcher for watch(): keeps the newest state until the generator takes it. */
class LatestState implements QueueWatcher {
  private state?: QueueState;
  private error?: Error;
  wake?: () => void;

  constructor(readonly waitingToken: string) {}

  update(state: QueueState): void {
    this.state = state;
    this.wake?.();
  }

  fail(error: unknown): void {
    this.error = error instanceof Error ? error : new Error(String(error));
    this.wake?.();
  }

  /** The newest state not taken yet, once there is one; undefined once `signal` aborts. */
  async next(signal: AbortSignal): Promise<QueueState | undefined> {
    while (this.state === undefined && this.error === undefined) {
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    if (this.error !== undefined) throw this.error;
    const state = this.state;
    this.state = undefined;
    return signal.aborted ? undefined : state;
  }
}
