/**
 * What the main thread and the load threads of the builtin engine say to each other. Apart from
 * worker.ts, which runs as soon as it is imported.
 */
import type {RecordableHistogram} from 'node:perf_hooks';
import type {RequestSpec} from './scenarios.js';

export interface WorkerSetup {
  request: RequestSpec;
  connections: number;
  concurrency: number;
  timeoutMs: number;
  maxRequests: number;
  /** An Int32Array of COUNTER slots, shared by every thread of the run. */
  counters: SharedArrayBuffer;
  /** The contracts' FileDescriptorSet, for encoding gRPC requests. */
  contracts?: Uint8Array;
}

/** Slots of the shared counters. */
export const COUNTER = {warmupClaimed: 0, measureClaimed: 1, completed: 2, failed: 3} as const;
export const COUNTER_SLOTS = Object.keys(COUNTER).length;

export type ToWorker = {type: 'start'} | {type: 'measure'} | {type: 'stop'; cancel: boolean};

export interface ThreadResult {
  /** OK answers' latencies in nanoseconds. */
  histogram: RecordableHistogram;
  requests: number;
  ok: number;
  errors: Record<string, number>;
  /** Measured answers by the gateway's x-tacos-backend-road header. */
  roads: Record<string, number>;
  /** Share of the measured time this thread's event loop was busy (0..1). */
  eventLoopUtilization: number;
}

export type FromWorker = {type: 'ready'} | {type: 'result'; result: ThreadResult};
