import {arch, availableParallelism, cpus, platform} from 'node:os';
import {loadContractSet} from '../contracts.js';
import {createDevTokens} from '../gateway/user-tokens.js';
import {runBuiltin} from './builtin-engine.js';
import {checkTargets} from './check.js';
import type {Engine, ProgressObserver} from './engine.js';
import {runH2load} from './h2load.js';
import type {BenchOptions, EngineName} from './options.js';
import type {RunResult} from './results.js';
import {planRuns} from './scenarios.js';
import {runWrk} from './wrk.js';

const ENGINES: Record<EngineName, Engine> = {builtin: runBuiltin, h2load: runH2load, wrk: runWrk};

/** gRPC over HTTP: above 1 gRPC serves more per second; below 1 its latencies are lower. */
export interface Ratio {
  requestsPerSecond: number | null;
  p50: number | null;
  p99: number | null;
}

export interface BenchReport {
  scenario: BenchOptions['scenario'];
  engine: EngineName;
  eventId?: string;
  targets: {http: string; grpc?: string};
  options: Omit<BenchOptions, 'httpOrigin' | 'grpcAddress' | 'eventId'>;
  runs: RunResult[];
  ratio: Ratio | null;
  /** The load generator may have been the bottleneck. */
  warnings: string[];
  machine: MachineInfo;
  /** Stopped early by Ctrl-C: the runs hold what was measured until then. */
  interrupted: boolean;
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  node: string;
  platform: string;
}

/** The machine a report was measured on. */
export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: availableParallelism(),
    node: process.version,
    platform: `${platform()} ${arch()}`,
  };
}

/** Threads busier than this may have slowed the load down. */
const BUSY_THRESHOLD = 0.9;

/**
 * Checks each target with one real request, then runs the load of each run in turn (gRPC first) and
 * compares them. Ctrl-C (the signal) ends the run under way early and skips the rest.
 */
export async function runBench(
  options: BenchOptions,
  context: {signal: AbortSignal; progress?: ProgressObserver},
): Promise<BenchReport> {
  const loadMs = options.warmupMs + options.durationMs;
  const tokens = options.scenario === 'journey' ? await userTokens(options, Math.ceil(loadMs / 1000) * 2 + 600) : [];
  const plans = planRuns(options, tokens);
  const contracts = await loadContractSet();
  const notices = await checkTargets(plans, contracts.registry, options.timeoutMs);
  const runs: RunResult[] = [];
  for (const plan of plans) {
    if (context.signal.aborted) break;
    runs.push(
      await ENGINES[options.engine](plan, {options, contracts, signal: context.signal, progress: context.progress}),
    );
  }
  const {httpOrigin, grpcAddress, eventId, ...rest} = options;
  const grpcClient = plans.some((plan) => plan.request.kind === 'grpc');
  return {
    scenario: options.scenario,
    engine: options.engine,
    eventId: options.scenario === 'join' ? eventId : undefined,
    targets: {http: httpOrigin, grpc: grpcClient ? grpcAddress : undefined},
    options: rest,
    runs,
    ratio: compare(runs),
    warnings: [...notices, ...runs.flatMap(generatorWarnings)],
    machine: machineInfo(),
    interrupted: context.signal.aborted,
  };
}

/** One development token per user of the journey, user ids bench-user-0, bench-user-1, ... */
async function userTokens(options: BenchOptions, ttlSeconds: number): Promise<string[]> {
  const userIds = Array.from({length: options.users}, (_, user) => `bench-user-${user}`);
  return createDevTokens({envName: options.envName, userIds, ttlSeconds});
}

function compare(runs: RunResult[]): Ratio | null {
  const grpc = runs.find((run) => run.protocol === 'grpc');
  const http = runs.find((run) => run.protocol === 'http');
  if (!grpc || !http) return null;
  const over = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? a / b : null;
  return {
    requestsPerSecond: over(grpc.requestsPerSecond, http.requestsPerSecond),
    p50: over(grpc.latencyMs?.p50, http.latencyMs?.p50),
    p99: over(grpc.latencyMs?.p99, http.latencyMs?.p99),
  };
}

/** Above this share of the machine's CPU, a builtin generator on the same machine skews what it measures. */
const SHARED_MACHINE_SHARE = 0.2;

/** What the user should know about the generator of a run: a saturated thread or tool, or a builtin generator taking much of a shared machine. */
export function generatorWarnings(run: RunResult): string[] {
  const busy = run.generator.eventLoopUtilization.flatMap((utilization, index) =>
    utilization > BUSY_THRESHOLD
      ? [
          `${run.label}: generator thread ${index + 1} was ${Math.round(utilization * 100)}% busy, so it may have been the bottleneck (try --threads ${run.shape.threads + 1}).`,
        ]
      : [],
  );
  const perThread = run.generator.cpuPercentOfCore === null ? 0 : run.generator.cpuPercentOfCore / run.shape.threads;
  if (run.engine !== 'builtin' && perThread > BUSY_THRESHOLD * 100) {
    busy.push(
      `${run.label}: ${run.engine} used ${Math.round(perThread)}% of a core per thread, so it may have been the bottleneck (try --threads ${run.shape.threads + 1}).`,
    );
  }
  // On a machine shared with the stack, a generator that is not saturated still takes CPU from what it measures.
  if (run.engine === 'builtin' && (run.generator.cpuPercentOfMachine ?? 0) > SHARED_MACHINE_SHARE * 100) {
    busy.push(
      `${run.label}: the generator used ${Math.round(run.generator.cpuPercentOfMachine!)}% of this machine's CPU, taken from the stack it measures if both run here; --engine h2load or wrk cost far less per request.`,
    );
  }
  return busy;
}
