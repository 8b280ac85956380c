/**
 * One load thread of the builtin engine: its share of the connections and of the requests in
 * flight, each request timed, OK latencies in a histogram, errors counted by code. The main
 * thread drives the phases (warm-up, measure, stop) with messages; the shared counters bound the
 * request count across threads and show progress.
 */
import {performance, createHistogram, type EventLoopUtilization} from 'node:perf_hooks';
import {parentPort, workerData} from 'node:worker_threads';
import {createFileRegistry, fromBinary} from '@bufbuild/protobuf';
import {FileDescriptorSetSchema} from '@bufbuild/protobuf/wkt';
import {createLoadClient} from './load-client.js';
import {COUNTER, type FromWorker, type ToWorker, type WorkerSetup} from './worker-protocol.js';

type Phase = 'idle' | 'warmup' | 'measure' | 'stopping';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const counters = new Int32Array(setup.counters);
const registry = setup.contracts && createFileRegistry(fromBinary(FileDescriptorSetSchema, setup.contracts));
const client = createLoadClient(setup.request, setup.connections, setup.timeoutMs, registry);
const histogram = createHistogram();
const errors: Record<string, number> = {};
const roads: Record<string, number> = {};
let requests = 0;
let ok = 0;
let phase: Phase = 'idle';
let cancelled = false;
let reported = false;
let measureStartElu: EventLoopUtilization | undefined;
let measureStarted!: () => void;
const measuring = new Promise<void>((resolve) => (measureStarted = resolve));

async function lane(index: number): Promise<void> {
  for (;;) {
    const current = phase;
    if (current === 'stopping') return;
    const claimed = Atomics.add(counters, current === 'measure' ? COUNTER.measureClaimed : COUNTER.warmupClaimed, 1);
    if (claimed >= setup.maxRequests) {
      if (current === 'measure') return;
      // The warm-up is bounded in count too: wait for the measured phase.
      await measuring;
      continue;
    }
    // Warm-up requests are numbered after the measured ones, so every request has its own number.
    const sequence = current === 'measure' ? claimed : setup.maxRequests + claimed;
    const started = process.hrtime.bigint();
    const outcome = await client.send(sequence, index);
    if (current !== 'measure' || cancelled) continue;
    requests++;
    Atomics.add(counters, COUNTER.completed, 1);
    if (outcome.road !== undefined) roads[outcome.road] = (roads[outcome.road] ?? 0) + 1;
    if (outcome.ok) {
      ok++;
      histogram.record(process.hrtime.bigint() - started);
    } else {
      errors[outcome.code] = (errors[outcome.code] ?? 0) + 1;
      Atomics.add(counters, COUNTER.failed, 1);
    }
  }
}

function report(): void {
  if (reported) return;
  reported = true;
  const eventLoopUtilization = performance.eventLoopUtilization(measureStartElu).utilization;
  const message: FromWorker = {type: 'result', result: {histogram, requests, ok, errors, roads, eventLoopUtilization}};
  port.postMessage(message);
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'start') {
    phase = 'warmup';
    void Promise.all(Array.from({length: setup.concurrency}, (_, index) => lane(index))).then(() => {
      client.close();
      report();
    });
  } else if (message.type === 'measure') {
    phase = 'measure';
    measureStartElu = performance.eventLoopUtilization();
    measureStarted();
  } else {
    phase = 'stopping';
    measureStarted();
    // Cancelled (Ctrl-C): report what was measured now; the main thread ends this thread.
    if (message.cancel) {
      cancelled = true;
      report();
    }
  }
});

port.postMessage({type: 'ready'} satisfies FromWorker);
