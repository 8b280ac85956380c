import {availableParallelism} from 'node:os';
import type {RecordableHistogram} from 'node:perf_hooks';
import type {EngineName, RunShape, RunSide} from './options.js';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** What the load generator itself cost while measuring: if it was saturated, it may have been the bottleneck. */
export interface GeneratorLoad {
  /** CPU time over the measured time, in % of one core (null when it could not be read). */
  cpuPercentOfCore: number | null;
  /** The same over every CPU of the machine. */
  cpuPercentOfMachine: number | null;
  /** Per generator thread, the share of the time its event loop was busy (builtin engine only). */
  eventLoopUtilization: number[];
}

export interface RunResult {
  label: string;
  protocol: RunSide;
  engine: EngineName;
  shape: RunShape;
  /** Measured time: from the end of the warm-up to the last answer. */
  durationMs: number;
  /** Answers received while measuring, OK or not. */
  requests: number;
  ok: number;
  /** OK answers per second. */
  requestsPerSecond: number;
  /** Latency of the OK answers, in ms (wrk: of every answer); null without any. */
  latencyMs: Latency | null;
  /** Requests that were not OK, by code: an HTTP status, a gRPC code name, or a connection error. */
  errors: Record<string, number>;
  /**
   * Measured answers by the gateway's x-tacos-backend-road header (`grpc`, `http`, `grpc,http`):
   * which road the backend calls took. Builtin engine only; empty when the gateway does not say
   * (production, or no backend calls).
   */
  roads?: Record<string, number>;
  generator: GeneratorLoad;
  /** Caveats of this run (an engine's limits, a thread that did not finish). */
  notes: string[];
  /** Stopped early by Ctrl-C. */
  interrupted: boolean;
}

/** Percentiles of a histogram of nanoseconds, in ms; null when it is empty. */
export function latencyFromHistogram(histogram: RecordableHistogram): Latency | null {
  if (histogram.count === 0) return null;
  const ms = (ns: number) => ns / 1e6;
  return {
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
    mean: ms(histogram.mean),
  };
}

/** CPU time spent over a wall time, as % of one core and of the machine. */
export function cpuLoad(
  cpuMicros: number | null,
  wallMs: number,
): Pick<GeneratorLoad, 'cpuPercentOfCore' | 'cpuPercentOfMachine'> {
  if (cpuMicros === null || wallMs <= 0) return {cpuPercentOfCore: null, cpuPercentOfMachine: null};
  const ofCore = (cpuMicros / 1000 / wallMs) * 100;
  return {cpuPercentOfCore: ofCore, cpuPercentOfMachine: ofCore / availableParallelism()};
}

export function perSecond(count: number, durationMs: number): number {
  return durationMs > 0 ? (count / durationMs) * 1000 : 0;
}
