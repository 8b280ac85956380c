/**
 * One subscriber thread of the waiting-room scenario: its share of the waiting people, each polling
 * the status route, holding a WebSocket (raw `ws` client) or an SSE stream (a plain HTTP response),
 * cheap enough to hold tens of thousands per thread. Each subscriber's position is read from the
 * text with one regular expression, not a JSON parse; a drop of k places means it has seen the
 * first k admissions, whose send times the main thread posts.
 */
import {request as httpRequest, type ClientRequest} from 'node:http';
import {createHistogram, performance, type EventLoopUtilization} from 'node:perf_hooks';
import {parentPort, workerData} from 'node:worker_threads';
import {Pool} from 'undici';
import WebSocket from 'ws';
import {
  QUEUE_PATHS,
  type FromSubscribers,
  type SubscriberResult,
  type SubscriberSetup,
  type ToSubscribers,
} from './waiting-room-protocol.js';

const setup = workerData as SubscriberSetup;
const port = parentPort!;
const count = setup.tokens.length;
/** Each subscriber's position before any admission (-1 until known), and how many admissions it has seen. */
const basePosition = new Int32Array(count).fill(-1);
const admissionsSeen = new Int32Array(count);
const admissionAt = new Float64Array(setup.maxAdmissions + 1);
const reached = new Int32Array(setup.maxAdmissions + 1);
const slowestMs = new Float64Array(setup.maxAdmissions + 1);
/** Sightings of admissions whose send time has not arrived yet: [index, at] pairs. */
let early: number[] = [];
const histogram = createHistogram();
const lost: Record<string, number> = {};
const firstPosition: Array<(() => void) | undefined> = [];
let messages = 0;
let measuring = false;
let stopping = false;
let measureStartElu: EventLoopUtilization | undefined;

const POSITION = /"position":(\d+)/g;
const now = () => performance.timeOrigin + performance.now();

/** A subscriber that had its first position was lost (a refused one is counted as a failure to connect). */
function countLoss(i: number, code: string): void {
  if (measuring && !stopping && basePosition[i] >= 0) lost[code] = (lost[code] ?? 0) + 1;
}

function sighted(index: number, at: number): void {
  const sentAt = admissionAt[index];
  if (sentAt === 0) {
    early.push(index, at);
    return;
  }
  const delayMs = Math.max(0, at - sentAt);
  histogram.record(Math.max(1, Math.round(delayMs * 1e6)));
  reached[index]++;
  if (delayMs > slowestMs[index]) slowestMs[index] = delayMs;
}

/** The last position in `text` (a message, a status answer, or a run of SSE events) for subscriber `i`. */
function onText(i: number, text: string): void {
  let position = -1;
  for (const match of text.matchAll(POSITION)) position = Number(match[1]);
  if (position < 0) return;
  if (measuring) messages++;
  if (basePosition[i] < 0) {
    basePosition[i] = position;
    firstPosition[i]?.();
    return;
  }
  const admitted = Math.min(basePosition[i] - position, setup.maxAdmissions);
  if (admitted <= admissionsSeen[i]) return;
  const at = now();
  // A subscriber that skipped a state (the gateway keeps only the newest for a slow reader) saw every admission up to it.
  for (let index = admissionsSeen[i] + 1; index <= admitted; index++) sighted(index, at);
  admissionsSeen[i] = admitted;
}

function onAdmission(index: number, at: number): void {
  admissionAt[index] = at;
  const waiting = early;
  early = [];
  for (let k = 0; k < waiting.length; k += 2) sighted(waiting[k], waiting[k + 1]);
}

/** Opens subscriber i and settles once it has its first position or has failed (the failure's code). */
type Opener = (i: number) => Promise<string | undefined>;

const closers: Array<() => void> = [];

function firstPositionWithin(i: number, onTimeout: () => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onTimeout();
      resolve('TIMEOUT');
    }, setup.timeoutMs);
    firstPosition[i] = () => {
      clearTimeout(timer);
      firstPosition[i] = undefined;
      resolve(undefined);
    };
  });
}

const wsOrigin = setup.origin.replace(/^http/, 'ws');
const query = (i: number) => `?token=${encodeURIComponent(setup.tokens[i])}`;

const openWebSocket: Opener = (i) => {
  const socket = new WebSocket(`${wsOrigin}${QUEUE_PATHS.ws}${query(i)}`, {
    perMessageDeflate: false,
    handshakeTimeout: setup.timeoutMs,
  });
  closers[i] = () => socket.terminate();
  let failed: ((code: string) => void) | undefined;
  const failure = new Promise<string>((resolve) => (failed = resolve));
  socket.on('message', (data) => onText(i, String(data)));
  socket.on('unexpected-response', (request, response) => {
    failed?.(String(response.statusCode));
    request.destroy();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => failed?.(error.code ?? 'ERROR'));
  socket.on('close', (code) => {
    failed?.(`close ${code}`);
    countLoss(i, `close ${code}`);
  });
  return Promise.race([firstPositionWithin(i, () => socket.terminate()), failure]).finally(() => (failed = undefined));
};

const openEventStream: Opener = (i) => {
  const url = new URL(`${setup.origin}${QUEUE_PATHS.sse}${query(i)}`);
  let failed: ((code: string) => void) | undefined;
  const failure = new Promise<string>((resolve) => (failed = resolve));
  const request: ClientRequest = httpRequest(
    {host: url.hostname, port: url.port, path: url.pathname + url.search, headers: {accept: 'text/event-stream'}},
    (response) => {
      if (response.statusCode !== 200) {
        failed?.(String(response.statusCode));
        response.resume();
        return;
      }
      response.setEncoding('utf8');
      // Events end with a blank line: only whole events are read, the rest waits for the next chunk.
      let pending = '';
      response.on('data', (chunk: string) => {
        pending += chunk;
        const end = pending.lastIndexOf('\n\n');
        if (end < 0) return;
        onText(i, pending.slice(0, end));
        pending = pending.slice(end + 2);
      });
      response.on('end', () => countLoss(i, 'ended'));
    },
  );
  request.on('error', (error: NodeJS.ErrnoException) => {
    failed?.(error.code ?? 'ERROR');
    countLoss(i, error.code ?? 'ERROR');
  });
  request.end();
  closers[i] = () => request.destroy();
  return Promise.race([firstPositionWithin(i, () => request.destroy()), failure]).finally(() => (failed = undefined));
};

const pool =
  setup.mode === 'poll'
    ? new Pool(setup.origin, {
        connections: Math.min(count, setup.connectConcurrency),
        headersTimeout: setup.timeoutMs,
        bodyTimeout: setup.timeoutMs,
      })
    : undefined;

/** One status call for subscriber i: undefined when it answered with a position, else the failure's code. */
async function poll(i: number): Promise<string | undefined> {
  try {
    const response = await pool!.request({method: 'GET', path: `${QUEUE_PATHS.status}${query(i)}`});
    const text = await response.body.text();
    if (response.statusCode !== 200) return String(response.statusCode);
    onText(i, text);
    return undefined;
  } catch (error) {
    return (error as {code?: string}).code ?? 'ERROR';
  }
}

const pollTimers: NodeJS.Timeout[] = [];

/** Subscriber i's polling from now on, every interval, first after a random share of it (spread load). */
function keepPolling(i: number): void {
  let due = Date.now() + Math.random() * setup.pollIntervalMs;
  const tick = () =>
    void poll(i).then((failure) => {
      if (failure) countLoss(i, failure);
      if (stopping) return;
      due += setup.pollIntervalMs;
      pollTimers[i] = setTimeout(tick, Math.max(0, due - Date.now()));
    });
  pollTimers[i] = setTimeout(tick, due - Date.now());
}

const openers: Record<SubscriberSetup['mode'], Opener> = {ws: openWebSocket, sse: openEventStream, poll};

/** Opens every subscriber, `connectConcurrency` at a time; a poller's first call gives its first position. */
async function connectAll(): Promise<FromSubscribers> {
  const failures: Record<string, number> = {};
  let next = 0;
  let connected = 0;
  const lane = async () => {
    while (next < count && !stopping) {
      const i = next++;
      const failure = await openers[setup.mode](i);
      if (failure === undefined) {
        connected++;
        if (setup.mode === 'poll') keepPolling(i);
      } else failures[failure] = (failures[failure] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({length: Math.min(count, setup.connectConcurrency)}, lane));
  return {type: 'connected', connected, failures};
}

/** Subscribers that had a first position and have not seen the first `admissions` admissions yet. */
function behind(admissions: number): number {
  let count = 0;
  for (let i = 0; i < basePosition.length; i++)
    if (basePosition[i] >= 0 && admissionsSeen[i] < Math.min(admissions, setup.maxAdmissions)) count++;
  return count;
}

function stop(): void {
  stopping = true;
  pollTimers.forEach(clearTimeout);
  closers.forEach((close) => close());
  void pool?.destroy();
  const result: SubscriberResult = {
    histogram,
    reached,
    slowestMs,
    messages,
    lost,
    eventLoopUtilization: performance.eventLoopUtilization(measureStartElu).utilization,
  };
  port.postMessage({type: 'result', result} satisfies FromSubscribers);
}

port.on('message', (message: ToSubscribers) => {
  if (message.type === 'connect') void connectAll().then((reply) => port.postMessage(reply));
  else if (message.type === 'measure') {
    measuring = true;
    measureStartElu = performance.eventLoopUtilization();
  } else if (message.type === 'admission') onAdmission(message.index, message.at);
  else if (message.type === 'behind') port.postMessage({type: 'behind', subscribers: behind(message.admissions)});
  else stop();
});

port.postMessage({type: 'ready'} satisfies FromSubscribers);
