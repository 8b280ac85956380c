import {spawn} from 'node:child_process';
import {accessSync, constants} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
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
  return new TacosError(`${name} failed (exit code ${run.code}): ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' ')}`, {code: 'BENCH_ENGINE'});
}

/** Runs a load tool to its end (bounded), Ctrl-C passed on, its CPU time sampled. */
export function runTool(file: string, args: string[], options: ToolRunOptions): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    let cpuMicros: number | null = null;
    let interrupted = false;
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const startedAt = performance.now();
    options.progress?.runStarted(options.label, () => {
      const elapsedMs = performance.now() - startedAt;
      return {phase: elapsedMs < options.warmupMs ? 'warm-up' : 'measure', elapsedMs, totalMs: options.expectedMs};
    });
    const sampleCpu = () => {
      cpuMicros = processCpuMicros(child.pid) ?? cpuMicros;
    };
    const sampler = setInterval(sampleCpu, CPU_SAMPLE_MS);
    const deadline = setTimeout(() => child.kill('SIGKILL'), options.expectedMs + options.timeoutMs + KILL_GRACE_MS);
    const onAbort = () => {
      interrupted = true;
      child.kill('SIGINT');
    };
    options.signal.addEventListener('abort', onAbort, {once: true});
    if (options.signal.aborted) onAbort();
    const finish = () => {
      clearInterval(sampler);
      clearTimeout(deadline);
      options.signal.removeEventListener('abort', onAbort);
      options.progress?.runEnded();
    };
    child.once('error', (error) => {
      finish();
      reject(error);
    });
    child.once('close', (code) => {
      finish();
      resolve({code, stdout, stderr, cpuMicros, interrupted});
    });
  });
}
