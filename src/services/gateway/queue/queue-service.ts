import {createHash} from 'node:crypto';
import {ReplyError} from 'ioredis';
import {invalidArgument} from '../../api-errors.js';
import {TacosError, errorMessage} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {QueueChanges} from './changes.js';
import {EVENTS_KEY, assertEventId, queueKeys} from './keys.js';
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
};

export interface JoinRequest {
  eventId: string;
  userId: string;
  sessionId: string;
  idempotencyKey?: string;
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

type ScriptName = keyof typeof scripts;

const REGISTRY_REFRESH_MS = 10_000;
const MAX_ID_LENGTH = 128;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The same limits whichever door a join came through. */
function assertJoinRequest(request: JoinRequest): void {
  assertEventId(request.eventId);
  if (request.userId.length > MAX_ID_LENGTH) throw invalidArgument('user_id', `user_id must be at most ${MAX_ID_LENGTH} characters.`);
  if (request.sessionId.length > MAX_ID_LENGTH) throw invalidArgument('session_id', `session_id must be at most ${MAX_ID_LENGTH} characters.`);
  if (request.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(request.idempotencyKey)) {
    throw invalidArgument('Idempotency-Key', 'Idempotency-Key must be 1-255 visible ASCII characters.');
  }
}
type ScriptReply = Array<string | number>;

/**
 * The waiting room, one sorted set per event in Redis. REST and gRPC both call this class, so a
 * queue operation behaves the same whichever door it came through.
 */
export class QueueService {
  private readonly changes: QueueChanges;
  /** When this process last told the registry an event is active (ms), to do so every ~10 s, not per join. */
  private readonly registeredAt = new Map<string, number>();
  private sweepTimer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly settings: QueueSettings,
    private readonly logger: Logger,
  ) {
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, {lua});
    // A Redis that comes back may be a new one: register events again.
    redis.on('ready', () => this.registeredAt.clear());
    this.changes = new QueueChanges(redis, logger);
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
    this.changes.close();
    await this.sweeping;
  }

  async join(request: JoinRequest): Promise<JoinResult> {
    assertJoinRequest(request);
    const keys = queueKeys(request.eventId);
    const idempotencyKey = request.idempotencyKey;
    // The script compares it only with a key stored under an Idempotency-Key.
    const requestHash = idempotencyKey === undefined ? '' : hashJoin(request);
    if (idempotencyKey !== undefined) await this.claimIdempotencyKey(idempotencyKey, requestHash);
    await this.registerEvent(request.eventId);
    const token = newWaitingToken(request.eventId);
    const tokenTtl = this.settings.heartbeatTtlMs + this.settings.retentionMs;
    const scriptKeys = [keys.seq, keys.waiting, keys.heartbeat, keys.token(token)];
    if (idempotencyKey !== undefined) scriptKeys.push(keys.idempotency(idempotencyKey));
    const reply = await this.run('JOIN', scriptKeys, [
      token,
      request.userId,
      request.sessionId,
      tokenTtl,
      requestHash,
      this.settings.idempotencyTtlMs,
      this.settings.heartbeatTtlMs,
    ]);
    if (reply[0] === 'replay') {
      const [storedHash, storedToken, position, joinedAt] = String(reply[1]).split('|');
      if (storedHash !== requestHash) throw idempotencyConflict();
      return this.joinResult(storedToken, Number(position), Number(joinedAt), true);
    }
    return this.joinResult(String(reply[1]), Number(reply[2]), Number(reply[3]), false);
  }

  /** The token's state; a waiting token's heartbeat is refreshed (a status call is a sign of life). */
  async status(waitingToken: string): Promise<QueueState> {
    const eventId = this.eventOf(waitingToken);
    const keys = queueKeys(eventId);
    const {heartbeatTtlMs, retentionMs, admissionBurst, admissionRatePerSecond} = this.settings;
    const reply = await this.run(
      'STATUS',
      [keys.waiting, keys.heartbeat, keys.token(waitingToken), keys.bucket],
      [waitingToken, heartbeatTtlMs, retentionMs, keys.changes, admissionBurst, admissionRatePerSecond],
    );
    const state = String(reply[0]);
    if (state === 'unknown') throw tokenNotFound();
    const [position, joinedAt, now, bucketLevel] = reply.slice(1).map(Number);
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
      expiresAt: now + heartbeatTtlMs,
    };
  }

  async enter(waitingToken: string): Promise<EnterResult> {
    const eventId = this.eventOf(waitingToken);
    const keys = queueKeys(eventId);
    const s = this.settings;
    const reservationToken = newReservationToken(eventId);
    const reply = await this.run(
      'ENTER',
      [keys.waiting, keys.heartbeat, keys.token(waitingToken), keys.bucket, keys.admits, keys.stats, keys.reservationToken(reservationToken)],
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

  /** Per-event counts: one event, or every event this Redis has seen. */
  async stats(eventId?: string): Promise<EventQueueStats[]> {
    if (eventId) assertEventId(eventId);
    const events = eventId ? [eventId] : (await this.guard(() => this.redis.zrange(EVENTS_KEY, 0, -1))).sort();
    return Promise.all(
      events.map(async (id) => {
        const keys = queueKeys(id);
        const [waiting, admitted, waitMs, lastMinute] = (await this.run('STATS', [keys.waiting, keys.stats, keys.admits], [])).map(Number);
        return {
          eventId: id,
          waiting,
          admitted,
          admittedLastMinute: lastMinute,
          averageWaitSeconds: admitted > 0 ? Math.round(waitMs / admitted / 1000) : 0,
        };
      }),
    );
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
    return {eventId, restore: () => this.guard(() => this.redis.set(key, value, 'PX', Math.max(1, Number(ttlMs)), 'NX')).then(() => undefined)};
  }

  /**
   * The token's state now and after every change (position, ETA, readiness), ending when the token
   * is admitted, left or expired, or when `signal` aborts. It reads Redis only when the event's queue
   * changed (pub/sub), when time alone may have made the token ready (the minimum wait ends; at the
   * head of the line, the admission bucket refills), and every third of the heartbeat TTL: watching
   * counts as a heartbeat, so an idle watcher costs Redis one status call per 100 s by default.
   */
  async *watch(waitingToken: string, signal: AbortSignal): AsyncGenerator<QueueState> {
    const eventId = this.eventOf(waitingToken);
    const s = this.settings;
    let wake: (() => void) | undefined;
    let pending = false;
    const poke = () => {
      pending = true;
      wake?.();
    };
    const listening = this.changes.listen(eventId, poke);
    signal.addEventListener('abort', poke);
    try {
      // Read the first state only once changes are heard, or a change in between would be missed.
      await settledWithin(listening.subscribed, Math.min(s.sweepIntervalMs, 1000));
      let last = '';
      while (!signal.aborted) {
        pending = false;
        const state = await this.status(waitingToken);
        const fingerprint = JSON.stringify({...state, expiresAt: undefined, waitingSeconds: undefined});
        if (fingerprint !== last) {
          last = fingerprint;
          yield state;
        }
        if (state.status !== 'waiting') return;
        if (!pending) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.nextTimeDrivenRead(state));
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    } finally {
      listening.stop();
      signal.removeEventListener('abort', poke);
    }
  }

  /** How long a watcher of this waiting state may sleep when nothing in its queue changes. */
  private nextTimeDrivenRead(state: QueueState & {status: 'waiting'}): number {
    const s = this.settings;
    const heartbeat = s.heartbeatTtlMs / 3;
    if (state.admissionReady || state.position > s.maxAdmissionPosition) return heartbeat;
    const waitLeftMs = s.minWaitMs - state.waitingSeconds * 1000;
    if (state.position > s.instantPositions && waitLeftMs > 0) return Math.min(heartbeat, waitLeftMs);
    // Allowed in but for the admission bucket, which refills with time: look again when a token may be back.
    return Math.min(heartbeat, Math.max(s.sweepIntervalMs, 1000 / s.admissionRatePerSecond));
  }

  /**
   * One sweep of every registered event: expired heartbeats leave the line, and an event idle for
   * the retention time with nobody waiting leaves the registry, its keys set to expire. Errors are
   * logged; the next sweep tries again.
   */
  async sweep(): Promise<void> {
    let registry: string[];
    try {
      registry = await this.redis.zrange(EVENTS_KEY, 0, -1, 'WITHSCORES');
    } catch (error) {
      this.logger.debug({err: errorMessage(error)}, 'queue sweep skipped: Redis unavailable');
      return;
    }
    const idleSince = Date.now() - this.settings.retentionMs;
    for (let i = 0; i < registry.length && !this.closed; i += 2) {
      const [eventId, lastActive] = [registry[i], registry[i + 1]];
      try {
        await this.sweepEvent(eventId, Number(lastActive) <= idleSince ? lastActive : undefined);
      } catch (error) {
        // One event's failure must not stop the others' lines from moving.
        this.logger.warn({event_id: eventId, err: errorMessage(error)}, 'queue sweep of an event failed');
      }
    }
  }

  /** Expires the event's stale heartbeats; an idle event (`idleScore` given) with nobody waiting is unregistered. */
  private async sweepEvent(eventId: string, idleScore: string | undefined): Promise<void> {
    const keys = queueKeys(eventId);
    const [, waiting] = await this.run('SWEEP', [keys.waiting, keys.heartbeat], [keys.changes, 1000]);
    if (Number(waiting) > 0 || idleScore === undefined) return;
    const [pruned] = await this.run('PRUNE', [keys.waiting, keys.seq, keys.bucket, keys.stats, keys.admits], [this.settings.retentionMs]);
    if (Number(pruned) === 1) await this.run('UNREGISTER', [EVENTS_KEY], [eventId, idleScore]);
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
    const claimKey = `tacos:idempotency:${key}`;
    const claimed = await this.guard(() => this.redis.set(claimKey, requestHash, 'PX', this.settings.idempotencyTtlMs, 'NX'));
    if (claimed !== null) return;
    const stored = await this.guard(() => this.redis.get(claimKey));
    if (stored !== null && stored !== requestHash) throw idempotencyConflict();
  }

  /** Lists the event for stats and sweeps; once per process, again after Redis reconnects (it may be new). */
  private async registerEvent(eventId: string): Promise<void> {
    const now = Date.now();
    if (now - (this.registeredAt.get(eventId) ?? 0) < REGISTRY_REFRESH_MS) return;
    await this.guard(() => this.redis.zadd(EVENTS_KEY, now, eventId));
    this.registeredAt.set(eventId, now);
  }

  private run(name: ScriptName, keys: string[], args: Array<string | number>): Promise<ScriptReply> {
    const command = (this.redis as unknown as Record<string, (...params: Array<string | number>) => Promise<ScriptReply>>)[name];
    return this.guard(() => command.call(this.redis, keys.length, ...keys, ...args));
  }

  /** Redis being away is the caller's 503 / UNAVAILABLE; a script bug is ours. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof TacosError) throw error;
      // A script that fails is our bug; other refusals (READONLY, max clients, LOADING) are Redis being unavailable.
      if (error instanceof ReplyError && /^(ERR (Error running script|user_script)|WRONGTYPE)/.test(errorMessage(error))) {
        throw new TacosError(`The queue store failed: ${errorMessage(error)}`, {code: 'INTERNAL', cause: error});
      }
      throw new TacosError(`The queue store (Redis) is unavailable: ${errorMessage(error)}`, {
        code: 'UNAVAILABLE',
        hint: 'Check that Redis answers at REDIS_ADDRESS; the gateway reconnects on its own.',
        cause: error,
      });
    }
  }
}

/** Waits for `promise` to settle, but no longer than `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function hashJoin(request: JoinRequest): string {
  return createHash('sha256').update(JSON.stringify([request.eventId, request.userId, request.sessionId])).digest('base64url');
}

function tokenNotFound(): TacosError {
  return new TacosError('No such waiting token: it was never issued or has been forgotten.', {
    code: 'TOKEN_NOT_FOUND',
    hint: 'Join the queue again to get a new waiting token.',
  });
}

function idempotencyConflict(): TacosError {
  return new TacosError('This Idempotency-Key was already used with a different request.', {
    code: 'IDEMPOTENCY_CONFLICT',
    hint: 'Use a new Idempotency-Key for a different request.',
  });
}

function denialMessage(position: number, reason: 'position' | 'wait' | 'rate', s: QueueSettings): string {
  if (reason === 'position') return `Not your turn yet: position ${position}; entry opens at position ${s.maxAdmissionPosition}.`;
  if (reason === 'wait') return `Not your turn yet: position ${position} may enter ${Math.round(s.minWaitMs / 1000)} s after joining.`;
  return `Not your turn yet: position ${position}; admissions are metered, try again shortly.`;
}
