/**
 * The waiting-room scenario: N people waiting for one event follow their place by polling the
 * status route every 2 s, by a WebSocket, or by an SSE stream, while an admitter lets the head of
 * the line in at a fixed rate. For each way it measures what the gateway and Redis spend, the
 * gateway's memory, and how long an admission takes to reach every waiting person.
 */
import {setTimeout as sleep} from 'node:timers/promises';
import {Worker} from 'node:worker_threads';
import {createHistogram, type RecordableHistogram} from 'node:perf_hooks';
import {Pool} from 'undici';
import {TacosError, errorMessage} from '../errors.js';
import {createRedisClient, type RedisClient} from '../redis/client.js';
import type {RedisSettings} from '../redis/client.js';
import {machineInfo, type MachineInfo} from './bench.js';
import {workerEntry} from './builtin-engine.js';
import {openFileLimit, portOwner, processCpuMicros, processRssBytes} from '../proc.js';
import {cpuLoad, latencyFromHistogram, type GeneratorLoad, type Latency} from './results.js';
import {shareOf} from './options.js';
import {
  QUEUE_PATHS,
  type FromSubscribers,
  type SubscriberResult,
  type SubscriberSetup,
  type ToSubscribers,
  type WaitingMode,
} from './waiting-room-protocol.js';

export interface WaitingRoomOptions {
  /** Waiting people following their place, per way. */
  users: number;
  modes: WaitingMode[];
  /** How long each way is measured while admissions move the line. */
  durationMs: number;
  admitRatePerSecond: number;
  pollIntervalMs: number;
  /** Subscriber threads. */
  threads: number;
  /** Bound of each join, connection and status call. */
  timeoutMs: number;
  /** The gateway's REST origin, on loopback. */
  httpOrigin: string;
  /** The gateway's Redis, for its CPU (INFO cpu); undefined: not measured. */
  redis?: RedisSettings;
  /** Each way queues for the event `<eventPrefix>_<mode>`, a fresh line. */
  eventPrefix: string;
}

export interface WaitingRoomRun {
  mode: WaitingMode;
  label: string;
  eventId: string;
  subscribers: {asked: number; connected: number; failures: Record<string, number>};
  /** Measured time, while the admitter ran. */
  durationMs: number;
  admissions: number;
  /** Enter calls that did not admit, by HTTP status or error code. */
  admissionErrors: Record<string, number>;
  gateway: {
    /** Gateway CPU while measuring, in % of one core. */
    cpuPercentOfCore: number | null;
    /** The same per waiting person: CPU microseconds per person per second. */
    cpuMicrosPerPersonSecond: number | null;
    /** RSS before the subscribers connected and once they all had their first position. */
    rssBeforeBytes: number | null;
    rssConnectedBytes: number | null;
    /** (connected - before) / subscribers connected. */
    bytesPerSubscriber: number | null;
  };
  redis: {cpuPercentOfCore: number | null};
  delivery: {
    /** Messages (push) or status answers (poll) received while measuring. */
    messages: number;
    /** From an admission to one subscriber seeing its new position, over every (admission, subscriber). */
    perSubscriberMs: Latency | null;
    /** From an admission to the last subscriber seeing it, over the admissions that reached every one. */
    everyoneMs: Latency | null;
    /** Admissions that reached every connected subscriber before the end. */
    reachedEveryone: number;
    /** Subscribers lost or status calls failed while measuring, by code. */
    lost: Record<string, number>;
  };
  generator: GeneratorLoad;
  notes: string[];
  interrupted: boolean;
}

export interface WaitingRoomReport {
  scenario: 'waiting-room';
  targets: {http: string; redis: string | null};
  /** The process listening on the gateway's HTTP port, whose CPU and memory are read. */
  gatewayPid: number | null;
  options: Omit<WaitingRoomOptions, 'httpOrigin' | 'redis'>;
  runs: WaitingRoomRun[];
  /** Gateway CPU of each push way over that of polling the same people (goal: at most 0.1). */
  pushCpuOverPolling: Partial<Record<'ws' | 'sse', number>>;
  warnings: string[];
  machine: MachineInfo;
  interrupted: boolean;
}

const MODE_LABELS: Record<WaitingMode, string> = {
  poll: 'polling status every 2 s',
  ws: 'WebSocket',
  sse: 'Server-Sent Events',
};
/** Joins in flight while the line forms. */
const JOINS_IN_FLIGHT = 64;
/** Connections opened at once per thread (and the pollers' keep-alive connections per thread). */
const CONNECT_CONCURRENCY = 200;
/** Longest wait for the head of the line to become ready to enter (QUEUE_ADMISSION_MIN_WAIT). */
const HEAD_READY_TIMEOUT_MS = 30_000;
/** After the admitter stops, the longest wait for every person to see the last admission (polls: one interval more). */
const CATCH_UP_MS = 15_000;
const CATCH_UP_CHECK_MS = 100;
/** Let the first messages and their buffers settle before reading the memory of idle subscribers. */
const MEMORY_SETTLE_MS = 1000;
/** Beyond this, a subscriber thread that has not reported is ended without its figures. */
const REPORT_GRACE_MS = 10_000;

export function modeLabel(mode: WaitingMode): string {
  return MODE_LABELS[mode];
}

export async function runWaitingRoom(
  options: WaitingRoomOptions,
  context: {signal: AbortSignal},
): Promise<WaitingRoomReport> {
  const port = Number(new URL(options.httpOrigin).port || 80);
  const gatewayPid = (await portOwner(port))?.pid ?? null;
  const warnings: string[] = [];
  if (gatewayPid === null) {
    warnings.push(
      `No process of this machine visible in /proc listens on port ${port}: the gateway's CPU and memory are not measured.`,
    );
  }
  warnings.push(...(await fileLimitWarnings(options, gatewayPid)));
  const redis =
    options.redis && !options.redis.clusterMode ? createRedisClient(options.redis, 'tacos-bench') : undefined;
  redis?.on('error', () => undefined); // an unreachable Redis leaves its CPU unmeasured, said in the run's notes
  const http = new Pool(options.httpOrigin, {
    connections: JOINS_IN_FLIGHT,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const runs: WaitingRoomRun[] = [];
  try {
    for (const mode of options.modes) {
      if (context.signal.aborted) break;
      runs.push(await runMode(mode, options, {http, redis, gatewayPid, signal: context.signal}));
    }
  } finally {
    redis?.disconnect();
    await http.destroy();
  }
  const pollCpu = runs.find((run) => run.mode === 'poll')?.gateway.cpuPercentOfCore;
  const pushCpuOverPolling: WaitingRoomReport['pushCpuOverPolling'] = {};
  for (const run of runs) {
    if (run.mode !== 'poll' && pollCpu && run.gateway.cpuPercentOfCore !== null)
      pushCpuOverPolling[run.mode] = run.gateway.cpuPercentOfCore / pollCpu;
  }
  const {httpOrigin, redis: redisSettings, ...rest} = options;
  return {
    scenario: 'waiting-room',
    targets: {http: httpOrigin, redis: redisSettings?.address ?? null},
    gatewayPid,
    options: rest,
    runs,
    pushCpuOverPolling,
    warnings,
    machine: machineInfo(),
    interrupted: context.signal.aborted,
  };
}

/** Sockets need file descriptors on both ends: say so before the run when a limit is below the subscribers. */
async function fileLimitWarnings(options: WaitingRoomOptions, gatewayPid: number | null): Promise<string[]> {
  if (!options.modes.some((mode) => mode !== 'poll')) return [];
  const needed = options.users + 100;
  const warnings: string[] = [];
  const own = await openFileLimit('self');
  if (own !== undefined && own < needed)
    warnings.push(
      `This process may open ${own} files, fewer than ${needed} for ${options.users} sockets: raise it (ulimit -n ${needed}) or expect EMFILE.`,
    );
  const gateway = gatewayPid === null ? undefined : await openFileLimit(gatewayPid);
  if (gateway !== undefined && gateway < needed)
    warnings.push(
      `The gateway (pid ${gatewayPid}) may open ${gateway} files, fewer than ${needed}: start it after ulimit -n ${needed}, or it refuses sockets.`,
    );
  return warnings;
}

interface ModeContext {
  http: Pool;
  redis?: RedisClient;
  gatewayPid: number | null;
  signal: AbortSignal;
}

async function runMode(mode: WaitingMode, options: WaitingRoomOptions, context: ModeContext): Promise<WaitingRoomRun> {
  const eventId = `${options.eventPrefix}_${mode}`;
  const notes: string[] = [];
  // The admitter's people join first: the head of the line, ahead of every subscriber.
  const maxAdmissions = Math.ceil((options.admitRatePerSecond * options.durationMs) / 1000) + 1;
  const head = await joinLine(context.http, eventId, 'head', maxAdmissions, 1);
  const tokens = await joinLine(context.http, eventId, 'person', options.users, JOINS_IN_FLIGHT);
  if (head.length < maxAdmissions) notes.push(`${maxAdmissions - head.length} of the admitter's joins failed`);
  if (tokens.length < options.users) notes.push(`${options.users - tokens.length} of the subscribers' joins failed`);

  const rssBefore = await usageOf(context.gatewayPid);
  const threadCount = Math.max(1, Math.min(options.threads, tokens.length));
  const threads = Array.from({length: threadCount}, (_, index) => {
    const from = Array.from({length: index}, (_, k) => shareOf(tokens.length, threadCount, k)).reduce(
      (sum, n) => sum + n,
      0,
    );
    return startSubscribers({
      mode,
      origin: options.httpOrigin,
      tokens: tokens.slice(from, from + shareOf(tokens.length, threadCount, index)),
      pollIntervalMs: options.pollIntervalMs,
      timeoutMs: options.timeoutMs,
      maxAdmissions,
      connectConcurrency: CONNECT_CONCURRENCY,
    });
  });
  const post = (message: ToSubscribers) => threads.forEach((thread) => thread.worker.postMessage(message));
  try {
    await Promise.all(threads.map((thread) => thread.ready));
    post({type: 'connect'});
    const connections = await Promise.all(threads.map((thread) => thread.connected));
    const connected = connections.reduce((sum, reply) => sum + reply.connected, 0);
    const failures = mergeCounts(connections.map((reply) => reply.failures));
    if (failures['503'])
      notes.push(
        `the gateway refused ${failures['503']} sockets (503): its cap is LIVE_MAX_SOCKETS, by default 80 % of SERVER_MAX_CONNECTIONS`,
      );
    await sleep(MEMORY_SETTLE_MS);
    const rssConnected = await usageOf(context.gatewayPid);
    if (!(await headReady(context.http, head[0], options.timeoutMs)))
      notes.push(`the head of the line was not ready to enter within ${HEAD_READY_TIMEOUT_MS / 1000} s`);

    post({type: 'measure'});
    const start = {
      at: performance.now(),
      gateway: await usageOf(context.gatewayPid),
      redis: await redisCpuSeconds(context.redis),
      generator: process.cpuUsage(),
    };
    const admitter = await admit(context.http, head, options, context.signal, (index, at) =>
      post({type: 'admission', index, at}),
    );
    const durationMs = performance.now() - start.at;
    const end = {
      gateway: await usageOf(context.gatewayPid),
      redis: await redisCpuSeconds(context.redis),
      generator: process.cpuUsage(start.generator),
    };
    const caughtUp = await catchUp(
      threads,
      admitter.admissions,
      (mode === 'poll' ? options.pollIntervalMs : 0) + CATCH_UP_MS,
      context.signal,
    );
    if (!caughtUp) notes.push(`not everyone had seen every admission ${CATCH_UP_MS / 1000} s after the last one`);
    const results = await Promise.all(threads.map((thread) => thread.stop()));

    const gatewayCpuMicros = start.gateway && end.gateway ? end.gateway.cpuMicros - start.gateway.cpuMicros : null;
    const redisCpuMicros = start.redis !== null && end.redis !== null ? (end.redis - start.redis) * 1e6 : null;
    if (context.redis && redisCpuMicros === null) notes.push("Redis's CPU could not be read (INFO cpu)");
    const rssGrowth =
      rssBefore && rssConnected && connected > 0 ? (rssConnected.rssBytes - rssBefore.rssBytes) / connected : null;
    return {
      mode,
      label: MODE_LABELS[mode],
      eventId,
      subscribers: {asked: options.users, connected, failures},
      durationMs,
      admissions: admitter.admissions,
      admissionErrors: admitter.errors,
      gateway: {
        cpuPercentOfCore: cpuLoad(gatewayCpuMicros, durationMs).cpuPercentOfCore,
        cpuMicrosPerPersonSecond:
          gatewayCpuMicros === null || connected === 0 ? null : gatewayCpuMicros / connected / (durationMs / 1000),
        rssBeforeBytes: rssBefore?.rssBytes ?? null,
        rssConnectedBytes: rssConnected?.rssBytes ?? null,
        bytesPerSubscriber: rssGrowth,
      },
      redis: {cpuPercentOfCore: cpuLoad(redisCpuMicros, durationMs).cpuPercentOfCore},
      delivery: deliveryOf(results, admitter.admissions, connected),
      generator: {
        ...cpuLoad(end.generator.user + end.generator.system, durationMs),
        eventLoopUtilization: results.map((result) => result.eventLoopUtilization),
      },
      notes,
      interrupted: context.signal.aborted,
    };
  } finally {
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }
}

function mergeCounts(counts: Array<Record<string, number>>): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const each of counts) for (const [code, n] of Object.entries(each)) merged[code] = (merged[code] ?? 0) + n;
  return merged;
}

function deliveryOf(results: SubscriberResult[], admissions: number, connected: number): WaitingRoomRun['delivery'] {
  const perSubscriber = createHistogram();
  const everyone: RecordableHistogram = createHistogram();
  let reachedEveryone = 0;
  for (const result of results) perSubscriber.add(result.histogram);
  for (let index = 1; index <= admissions; index++) {
    const reached = results.reduce((sum, result) => sum + (result.reached[index] ?? 0), 0);
    if (connected === 0 || reached < connected) continue;
    reachedEveryone++;
    const slowest = Math.max(...results.map((result) => result.slowestMs[index]));
    everyone.record(Math.max(1, Math.round(slowest * 1e6)));
  }
  return {
    messages: results.reduce((sum, result) => sum + result.messages, 0),
    perSubscriberMs: latencyFromHistogram(perSubscriber),
    everyoneMs: latencyFromHistogram(everyone),
    reachedEveryone,
    lost: mergeCounts(results.map((result) => result.lost)),
  };
}

/** What a process has cost so far (Linux's /proc): CPU time in µs, resident memory; null when unreadable. */
async function usageOf(pid: number | null): Promise<{cpuMicros: number; rssBytes: number} | null> {
  if (pid === null) return null;
  const [cpuMicros, rssBytes] = [processCpuMicros(pid), await processRssBytes(pid)];
  return cpuMicros === undefined || rssBytes === undefined ? null : {cpuMicros, rssBytes};
}

/** Redis's own CPU (user + system) in seconds since it started, or null when it cannot be read. */
async function redisCpuSeconds(redis: RedisClient | undefined): Promise<number | null> {
  if (!redis) return null;
  try {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
    const seconds = field('used_cpu_user') + field('used_cpu_sys');
    return Number.isFinite(seconds) ? seconds : null;
  } catch {
    return null;
  }
}

/**
 * Joins `count` people to the event, `inFlight` at a time, and returns their waiting tokens in the
 * order of their places (the admitter's joins go one at a time, so the head is in order).
 */
async function joinLine(http: Pool, eventId: string, who: string, count: number, inFlight: number): Promise<string[]> {
  const tokens: Array<string | undefined> = new Array(count);
  let next = 0;
  let lastFailure = '';
  const lane = async () => {
    while (next < count) {
      const index = next++;
      try {
        const response = await http.request({
          method: 'POST',
          path: '/api/v1/queue/join',
          headers: {'content-type': 'application/json'},
          body: JSON.stringify({event_id: eventId, user_id: `${eventId}-${who}-${index}`}),
        });
        const body = (await response.body.json()) as {waiting_token?: string};
        if (response.statusCode === 202 && body.waiting_token) tokens[index] = body.waiting_token;
        else lastFailure = `HTTP ${response.statusCode}`;
      } catch (error) {
        lastFailure = errorMessage(error);
      }
    }
  };
  await Promise.all(Array.from({length: Math.min(inFlight, count)}, lane));
  const joined = tokens.filter((token): token is string => token !== undefined);
  if (joined.length === 0)
    throw new TacosError(`No join to ${eventId} succeeded (last: ${lastFailure}).`, {
      hint: 'Is the gateway up, in development (which opens events on a first join), with its Redis?',
    });
  return joined;
}

/** Whether the head may enter now (it has waited QUEUE_ADMISSION_MIN_WAIT), asked until it may or the bound. */
async function headReady(http: Pool, token: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + HEAD_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const response = await http.request({
        method: 'GET',
        path: `${QUEUE_PATHS.status}?token=${encodeURIComponent(token)}`,
        headersTimeout: timeoutMs,
      });
      const body = (await response.body.json()) as {ready_for_entry?: boolean};
      if (body.ready_for_entry) return true;
    } catch {
      // Asked again below, within the bound.
    }
    await sleep(200);
  }
  return false;
}

/**
 * Lets the head in, one enter call per tick at the admission rate, for the measured time; a call
 * refused (not ready yet, rate) is counted and retried with the same person at the next tick. Each
 * admission's send time goes to the subscriber threads.
 */
async function admit(
  http: Pool,
  head: string[],
  options: WaitingRoomOptions,
  signal: AbortSignal,
  admitted: (index: number, at: number) => void,
): Promise<{admissions: number; errors: Record<string, number>}> {
  const errors: Record<string, number> = {};
  const tickMs = 1000 / options.admitRatePerSecond;
  const end = performance.now() + options.durationMs;
  let admissions = 0;
  for (let due = performance.now(); due < end && admissions < head.length && !signal.aborted; due += tickMs) {
    await sleep(Math.max(0, due - performance.now()));
    const at = performance.timeOrigin + performance.now();
    let code: string;
    try {
      const response = await http.request({
        method: 'POST',
        path: '/api/v1/queue/enter',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({waiting_token: head[admissions]}),
      });
      await response.body.dump();
      code = String(response.statusCode);
    } catch (error) {
      code = (error as {code?: string}).code ?? 'ERROR';
    }
    if (code === '200') admitted(++admissions, at);
    else errors[code] = (errors[code] ?? 0) + 1;
  }
  return {admissions, errors};
}

/**
 * Waits until every subscriber has seen the last admission (a lost one never will: bounded by
 * `boundMs`), so that late deliveries are counted instead of cut off. False when the bound passed.
 */
async function catchUp(
  threads: SubscriberThread[],
  admissions: number,
  boundMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  const deadline = performance.now() + boundMs;
  while (!signal.aborted) {
    const behind = await Promise.all(threads.map((thread) => thread.behind(admissions)));
    if (behind.every((count) => count === 0)) return true;
    if (performance.now() > deadline) return false;
    await sleep(CATCH_UP_CHECK_MS);
  }
  return false;
}

interface SubscriberThread {
  worker: Worker;
  ready: Promise<void>;
  connected: Promise<Extract<FromSubscribers, {type: 'connected'}>>;
  /** Subscribers of this thread that have not seen the first `admissions` admissions. */
  behind(admissions: number): Promise<number>;
  /** Tells the thread to close its subscribers and report; a thread silent past the grace fails. */
  stop(): Promise<SubscriberResult>;
}

function startSubscribers(setup: SubscriberSetup): SubscriberThread {
  const entry = workerEntry('waiting-room-worker');
  const worker = new Worker(entry.source, {workerData: setup, eval: entry.eval});
  const settle: {
    ready?: () => void;
    connected?: (reply: Extract<FromSubscribers, {type: 'connected'}>) => void;
    result?: (result: SubscriberResult) => void;
    behind?: (subscribers: number) => void;
  } = {};
  const died = new Promise<never>((_, reject) => {
    const failed = (error: Error) =>
      reject(new TacosError(`A subscriber thread failed: ${errorMessage(error)}`, {cause: error}));
    worker.once('error', failed);
    worker.once('exit', (code) => failed(new Error(`it exited (code ${code}) before reporting`)));
  });
  died.catch(() => undefined);
  worker.on('message', (message: FromSubscribers) => {
    if (message.type === 'ready') settle.ready?.();
    else if (message.type === 'connected') settle.connected?.(message);
    else if (message.type === 'behind') settle.behind?.(message.subscribers);
    else settle.result?.(message.result);
  });
  const bounded = <T>(promise: Promise<T>) => Promise.race([promise, died]);
  return {
    worker,
    ready: bounded(new Promise<void>((resolve) => (settle.ready = resolve))),
    connected: bounded(new Promise((resolve) => (settle.connected = resolve))),
    behind(admissions) {
      const answer = new Promise<number>((resolve) => (settle.behind = resolve));
      worker.postMessage({type: 'behind', admissions} satisfies ToSubscribers);
      return bounded(answer);
    },
    stop() {
      const result = new Promise<SubscriberResult>((resolve, reject) => {
        settle.result = resolve;
        setTimeout(() => reject(new TacosError('A subscriber thread did not report.')), REPORT_GRACE_MS).unref();
      });
      worker.postMessage({type: 'stop'} satisfies ToSubscribers);
      return bounded(result);
    },
  };
}
