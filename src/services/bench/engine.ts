import type {ContractSet} from '../contracts.js';
import type {BenchOptions} from './options.js';
import type {RunResult} from './results.js';
import type {RunPlan} from './scenarios.js';

/** Where a run stands, for the progress bar. */
export interface ProgressSample {
  phase: 'warm-up' | 'measure';
  /** Since the run started (warm-up included). */
  elapsedMs: number;
  totalMs: number;
  /** Answers while measuring, and over how long, when the engine can tell. */
  requests?: number;
  measuredMs?: number;
  errors?: number;
}

/** Told when a run's load starts (with a way to look at it) and when it ends. */
export interface ProgressObserver {
  runStarted(label: string, sample: () => ProgressSample): void;
  runEnded(): void;
}

export interface RunContext {
  options: BenchOptions;
  contracts: ContractSet;
  /** Aborted by Ctrl-C: the run stops early and reports what it measured. */
  signal: AbortSignal;
  progress?: ProgressObserver;
}

export type Engine = (plan: RunPlan, context: RunContext) => Promise<RunResult>;
