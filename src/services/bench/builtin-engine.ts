import {existsSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {createHistogram} from 'node:perf_hooks';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {Worker} from 'node:worker_threads';
import {TacosError, errorMessage} from '../errors.js';
import {PACKAGE_ROOT} from '../paths.js';
import type {Engine} from './engine.js';
import {runShape, shareOf} from './options.js';
import {cpuLoad, latencyFromHistogram, perSecond, type RunResult} from './results.js';
import {
  COUNTER,
  COUNTER_SLOTS,
  type FromWorker,
  type ThreadResult,
  type ToWorker,
  type WorkerSetup,
} from './worker-protocol.js';

/** How long a thread may take to report once stopped, beyond the per-request timeout. */
const REPORT_GRACE_MS = 2000;

/**
 * How to start a load thread (`name`: worker, or waiting-room-worker). The built commands are
 * bundled (dist/commands, dist/chunks), so the worker is not next to this module there: it is tsc's
 * dist/services/bench/<name>.js. From the sources (tsx, vitest) it is <name>.ts, which a Node 20 worker cannot load with --import tsx: the
 * thread imports it through tsx's API instead.
 */
export interface WorkerEntry {
  /** A file, or code to evaluate. */
  source: string;
  eval: boolean;
}

export function workerEntry(name: string): WorkerEntry {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const tsxApi = pathToFileURL(
      path.join(
        path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')),
        'dist',
        'esm',
        'api',
        'index.mjs',
      ),
    ).href;
    const worker = JSON.stringify(pathToFileURL(path.join(path.dirname(here), `${name}.ts`)).href);
    return {
      source: `import(${JSON.stringify(tsxApi)}).then(({tsImport}) => tsImport(${worker}, ${worker}))`,
      eval: true,
    };
  }
  const file = path.join(PACKAGE_ROOT, 'dist', 'services', 'bench', `${name}.js`);
  if (!existsSync(file))
    throw new TacosError(`The load generator's thread ${file} is missing.`, {hint: 'Build tacos: npm run build.'});
  return {source: file, eval: false};
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  result: Promise<ThreadResult>;
}

function startThread(entry: WorkerEntry, setup: WorkerSetup): Thread {
  const worker = new Worker(entry.source, {workerData: setup, eval: entry.eval});
  let ready!: () => void;
  let result!: (value: ThreadResult) => void;
  const readyPromise = new Promise<void>((resolve) => (ready = resolve));
  const resultPromise = new Promise<ThreadResult>((resolve, reject) => {
    result = resolve;
    const failed = (error: Error) =>
      reject(new TacosError(`A load generator thread failed: ${errorMessage(error)}`, {cause: error}));
    worker.once('error', failed);
    worker.once('exit', (code) => failed(new Error(`it exited (code ${code}) before reporting`)));
  });
  // Awaited later, or not at all when another thread failed first.
  resultPromise.catch(() => undefined);
  worker.on('message', (message: FromWorker) => (message.type === 'ready' ? ready() : result(message.result)));
  // A thread that dies before it is ready fails the run at once.
  return {worker, ready: Promise.race([readyPromise, resultPromise.then(() => undefined)]), result: resultPromise};
}

/**
 * The builtin engine: worker threads, each with its share of the connections and of the requests in
 * flight. Phases (warm-up, measure, stop) are timed here; a request in flight at the deadline is
 * waited for (it has its own timeout), then every thread is ended.
 */
export const runBuiltin: Engine = async (plan, {options, contracts, signal, progress}) => {
  const shape = runShape(options, plan.request.kind);
  const counters = new SharedArrayBuffer(COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT);
  const shared = new Int32Array(counters);
  const entry = workerEntry('worker');
  const threads = Array.from({length: shape.threads}, (_, index) =>
    startThread(entry, {
      request: plan.request,
      connections: shareOf(shape.connections, shape.threads, index),
      concurrency: shareOf(shape.concurrency, shape.threads, index),
      timeoutMs: options.timeoutMs,
      maxRequests: options.maxRequests,
      counters,
      contracts: plan.request.kind === 'grpc' ? contracts.bytes : undefined,
    }),
  );
  const notes: string[] = [];
  const timers: NodeJS.Timeout[] = [];
  const post = (message: ToWorker) => threads.forEach((thread) => thread.worker.postMessage(message));
  let measureStart: {at: number; cpu: NodeJS.CpuUsage} | undefined;
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    post({type: 'stop', cancel: true});
  };
  try {
    await Promise.all(threads.map((thread) => thread.ready));
    const startedAt = performance.now();
    progress?.runStarted(plan.label, () => ({
      phase: measureStart ? 'measure' : 'warm-up',
      elapsedMs: performance.now() - startedAt,
      totalMs: options.warmupMs + options.durationMs,
      requests: Atomics.load(shared, COUNTER.completed),
      measuredMs: measureStart ? performance.now() - measureStart.at : 0,
      errors: Atomics.load(shared, COUNTER.failed),
    }));
    signal.addEventListener('abort', onAbort, {once: true});
    const allReported = Promise.allSettled(threads.map((thread) => thread.result));
    post({type: 'start'});
    timers.push(
      setTimeout(() => {
        measureStart = {at: performance.now(), cpu: process.cpuUsage()};
        post({type: 'measure'});
      }, options.warmupMs),
      setTimeout(() => {
        post({type: 'stop', cancel: false});
        // Bounded: a thread that has not reported by then is ended without its figures.
        timers.push(
          setTimeout(
            () => threads.forEach((thread) => void thread.worker.terminate()),
            options.timeoutMs + REPORT_GRACE_MS,
          ),
        );
      }, options.warmupMs + options.durationMs),
    );
    if (signal.aborted) onAbort();
    const settled = await allReported;
    const endedAt = performance.now();
    const cpu = measureStart ? process.cpuUsage(measureStart.cpu) : undefined;

    const reports = settled.flatMap((outcome, index) => {
      if (outcome.status === 'fulfilled') return [outcome.value];
      notes.push(`thread ${index + 1} did not report: its requests are not counted (${errorMessage(outcome.reason)})`);
      return [];
    });
    if (reports.length === 0 && !interrupted) throw (settled[0] as PromiseRejectedResult).reason;
    const histogram = createHistogram();
    const errors: Record<string, number> = {};
    const roads: Record<string, number> = {};
    let requests = 0;
    let ok = 0;
    for (const report of reports) {
      histogram.add(report.histogram);
      requests += report.requests;
      ok += report.ok;
      for (const [code, count] of Object.entries(report.errors)) errors[code] = (errors[code] ?? 0) + count;
      for (const [road, count] of Object.entries(report.roads)) roads[road] = (roads[road] ?? 0) + count;
    }
    const durationMs = measureStart ? endedAt - measureStart.at : 0;
    return {
      label: plan.label,
      protocol: plan.protocol,
      engine: 'builtin',
      shape,
      durationMs,
      requests,
      ok,
      requestsPerSecond: perSecond(ok, durationMs),
      latencyMs: latencyFromHistogram(histogram),
      errors,
      roads,
      generator: {
        ...cpuLoad(cpu ? cpu.user + cpu.system : null, durationMs),
        eventLoopUtilization: reports.map((report) => report.eventLoopUtilization),
      },
      notes,
      interrupted,
    } satisfies RunResult;
  } finally {
    signal.removeEventListener('abort', onAbort);
    timers.forEach(clearTimeout);
    progress?.runEnded();
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }
};
