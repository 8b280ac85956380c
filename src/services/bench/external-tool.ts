import {accessSync, constants} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {TacosError, usageError} from '../errors.js';
import {processCpuMicros} from '../proc.js';
import type {ProgressObserver} from './engine.js';

const INSTALL_HINTS: Record<string, string> = {
  h2load: 'Install it: apt-get install nghttp2-client (macOS: brew install nghttp2). Or use --engine builtin.',
  wrk: 'Install it: apt-get install wrk (macOS: brew install wrk). Or use --engine builtin.',
};

/** The tool's path on PATH; a usage error naming the package to install when it is not there. */
export function requireTool(name: 'h2load' | 'wrk'): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not in this dir.
    }
  }
  throw usageError(`--engine ${name}: ${name} is not installed (not found on PATH).`, INSTALL_HINTS[name]);
}

/** A temp dir for the tool's input and log files, removed afterwards whatever happens. */
export async function withTempDir<T>(task: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-bench-'));
  try {
    return await task(dir);
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** CPU time of the tool (user + system, µs), sampled from /proc while it ran; null where there is no /proc. */
  cpuMicros: number | null;
  interrupted: boolean;
}

export interface ToolRunOptions {
  /** Its own duration: it is killed if it runs past this plus the per-request timeout and a grace. */
  expectedMs: number;
  timeoutMs: number;
  signal: AbortSignal;
  progress?: ProgressObserver;
  label: string;
  /** The warm-up at the start of expectedMs, for the progress bar. */
  warmupMs: number;
}

const CPU_SAMPLE_MS = 100;
const KILL_GRACE_MS = 3000;

/** A load tool that failed, with the last lines it printed. */
export function toolFailure(name: string, run: ToolRun): TacosError {
  return new TacosError(
    `${name} failed (exit code ${run.code}): ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' ')}`,
    {code: 'BENCH_ENGINE'},
  );
}

/** Runs a load tool to its end (bounded), Ctrl-C passed on, its CPU time sampled. */
export async function runTool(file: string, args: string[], options: ToolRunOptions): Promise<ToolRun> {
  // Ctrl-C reaches the tool as SIGINT (it reports what it measured so far); past the deadline, SIGKILL.
  const tool = execa(file, args, {
    stdin: 'ignore',
    reject: false,
    cancelSignal: options.signal,
    killSignal: 'SIGINT',
    forceKillAfterDelay: false,
    stripFinalNewline: false,
  });
  let cpuMicros: number | null = null;
  const startedAt = performance.now();
  options.progress?.runStarted(options.label, () => {
    const elapsedMs = performance.now() - startedAt;
    return {phase: elapsedMs < options.warmupMs ? 'warm-up' : 'measure', elapsedMs, totalMs: options.expectedMs};
  });
  const sampler = setInterval(() => {
    cpuMicros = processCpuMicros(tool.pid) ?? cpuMicros;
  }, CPU_SAMPLE_MS);
  const deadline = setTimeout(() => tool.kill('SIGKILL'), options.expectedMs + options.timeoutMs + KILL_GRACE_MS);
  try {
    const result = await tool;
    // It never ran (not executable, gone from PATH since requireTool).
    if (result.exitCode === undefined && result.signal === undefined && !result.isCanceled)
      throw result instanceof Error ? result : new Error(`${file} did not start`);
    return {
      code: result.exitCode ?? null,
      stdout: result.stdout,
      stderr: result.stderr,
      cpuMicros,
      interrupted: result.isCanceled,
    };
  } finally {
    clearInterval(sampler);
    clearTimeout(deadline);
    options.progress?.runEnded();
  }
}
