/**
 * What the main thread and the subscriber threads of the waiting-room scenario say to each other.
 * Apart from waiting-room-worker.ts, which runs as soon as it is imported.
 */
import type {RecordableHistogram} from 'node:perf_hooks';

/** How a waiting person follows their place: polling the status route, a WebSocket, or an SSE stream. */
export const WAITING_MODES = ['poll', 'ws', 'sse'] as const;
export type WaitingMode = (typeof WAITING_MODES)[number];

export const QUEUE_PATHS = {
  status: '/api/v1/queue/status',
  ws: '/api/v1/queue/ws',
  sse: '/api/v1/queue/events',
} as const;

export interface SubscriberSetup {
  mode: WaitingMode;
  /** http://host:port of the gateway. */
  origin: string;
  /** This thread's waiting tokens, one subscriber each. */
  tokens: string[];
  pollIntervalMs: number;
  /** Bound of each connection attempt and of each status call. */
  timeoutMs: number;
  /** Admissions are numbered 1..maxAdmissions. */
  maxAdmissions: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
}

export type ToSubscribers =
  | {type: 'connect'}
  | {type: 'measure'}
  /** Admission `index` was sent at `at` (ms since the epoch, sub-ms precision). */
  | {type: 'admission'; index: number; at: number}
  /** How many subscribers have not yet seen the first `admissions` admissions? */
  | {type: 'behind'; admissions: number}
  | {type: 'stop'};

export interface SubscriberResult {
  /** Delay from each admission to each subscriber seeing its new position, in ns. */
  histogram: RecordableHistogram;
  /** Per admission (index 0 unused): how many subscribers saw it, and the slowest of them, in ms. */
  reached: Int32Array;
  slowestMs: Float64Array;
  /** Messages (or status answers) received while measuring. */
  messages: number;
  /** Subscribers lost or calls failed while measuring, by code (close code, HTTP status, error). */
  lost: Record<string, number>;
  /** Share of the measured time this thread's event loop was busy (0..1). */
  eventLoopUtilization: number;
}

export type FromSubscribers =
  | {type: 'ready'}
  /** Every subscriber has its first position, or failed (by code). */
  | {type: 'connected'; connected: number; failures: Record<string, number>}
  | {type: 'behind'; subscribers: number}
  | {type: 'result'; result: SubscriberResult};
