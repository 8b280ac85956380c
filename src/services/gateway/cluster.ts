import cluster, {type Worker} from 'node:cluster';
import {setTimeout as sleep} from 'node:timers/promises';
import {TacosError, errorMessage, usageError} from '../errors.js';
import type {Logger} from '../logging.js';
import {isIpcMessage} from '../server-kit/cluster-ipc.js';
import {answerClusterMetrics} from '../server-kit/metrics.js';
import {waitForStopSignal} from '../signals.js';
import type {GatewayConfig} from './config.js';
import {startGateway, stopGateway, type RunningGateway} from './gateway.js';
import {leadClusterRollout} from './rollout/cluster-sync.js';
import {watchEnvFile, type EnvSource, type LiveSettings} from './rollout/live-settings.js';

export const MAX_WORKERS = 64;
/** More unexpected worker exits than there are workers within this window: a crash loop. */
const CRASH_WINDOW_MS = 10_000;
/** Beyond the workers' own grace for calls in flight, before the primary kills them. */
const STOP_MARGIN_MS = 5000;

const READY = 'tacos:gateway:ready';
const FAILED = 'tacos:gateway:failed';

interface ReadyMessage {
  type: typeof READY;
  httpPort: number;
  grpcPort?: number;
}

interface FailedMessage {
  type: typeof FAILED;
  message: string;
  hint?: string;
  code: string;
  exitCode: number;
}

/** `--workers` as given on the command line. */
export function parseWorkerCount(input: string): number {
  const count = Number(input);
  if (!/^\d+$/.test(input.trim()) || count < 1 || count > MAX_WORKERS) {
    throw usageError(
      `"${input}" is not a number of workers.`,
      `Give a whole number from 1 to ${MAX_WORKERS} (1: no cluster).`,
    );
  }
  return count;
}

function describeExit(worker: Worker, code: number | null, signal: string | null): string {
  return `gateway worker ${worker.process.pid} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
}

function sendToPrimary(message: ReadyMessage | FailedMessage): Promise<void> {
  // A primary already gone cannot be told; the worker is on its way out then anyway.
  return new Promise((resolve) => process.send?.(message, () => resolve()) ?? resolve());
}

/**
 * A cluster worker: runs the gateway on the shared ports until the primary sends SIGTERM, then
 * closes it cleanly. A worker whose primary is gone (even SIGKILLed) exits at once: node:cluster
 * does that when the IPC channel closes.
 */
export async function runGatewayWorker(config: GatewayConfig, logger: Logger, live: LiveSettings): Promise<void> {
  let stop!: (signal: NodeJS.Signals) => void;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (stop = resolve));
  // `on`, not `once`: `tacos up` signals the whole process group and the primary signals again,
  // and a second SIGTERM must not kill a worker that is finishing its requests.
  process.on('SIGTERM', stop);
  // Ctrl-C reaches the whole process group: the primary decides, and sends SIGTERM.
  process.on('SIGINT', () => undefined);
  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config, logger, live);
  } catch (error) {
    // The primary reports it, once for all workers, and stops.
    const failure = error instanceof TacosError ? error : new TacosError(errorMessage(error), {cause: error});
    await sendToPrimary({
      type: FAILED,
      message: failure.message,
      hint: failure.hint,
      code: failure.code,
      exitCode: failure.exitCode,
    });
    process.exitCode = failure.exitCode;
    cluster.worker?.disconnect();
    return;
  }
  await sendToPrimary({type: READY, httpPort: gateway.httpPort, grpcPort: gateway.grpcPort});
  await stopGateway(gateway, logger, await stopRequested);
  // The IPC channel would keep the worker alive; disconnecting also tells the primary the exit is planned.
  cluster.worker?.disconnect();
}

/**
 * The cluster primary: forks `count` workers that share the ports, replaces one that dies (up to
 * a crash loop), tells them to reload their live settings when `source`'s env file changes or on
 * SIGHUP (rollout/cluster-sync.ts), and on SIGINT/SIGTERM (or `tacos up` gone) stops them all, SIGKILL after the
 * grace time. It runs no gateway and no Redis client itself. Throws a TacosError when the workers
 * cannot start or keep dying.
 */
export async function runGatewayPrimary(
  config: GatewayConfig,
  logger: Logger,
  count: number,
  source: EnvSource,
): Promise<void> {
  cluster.setupPrimary({stdio: ['ignore', 'inherit', 'inherit', 'ipc']});
  const exits = new Map<Worker, Promise<void>>();
  const listening = new Set<Worker>();
  const reported = new Map<Worker, FailedMessage>();
  const deaths: number[] = [];
  let started = false;
  let stopping = false;
  let fail!: (error: TacosError) => void;
  const failed = new Promise<TacosError>((resolve) => (fail = resolve));
  const stopAnswering = answerClusterMetrics(() => [...listening]);
  const rollout = leadClusterRollout(() => [...listening]);
  const stopWatching = watchEnvFile(source, () => rollout.reload());
  // The primary stops only through the sequence below: a second signal must not kill it while
  // its workers finish (`tacos up` signals the whole group, a user may press Ctrl-C twice).
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);

  const onReady = (worker: Worker, message: ReadyMessage) => {
    listening.add(worker);
    rollout.joined(worker);
    if (started || listening.size < count) return;
    started = true;
    logger.info(
      {
        http: `http://${config.host}:${message.httpPort}`,
        grpc: message.grpcPort === undefined ? 'disabled' : `grpc://${config.host}:${message.grpcPort}`,
        workers: [...listening].map((each) => each.process.pid),
      },
      'gateway workers listening',
    );
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    listening.delete(worker);
    exits.delete(worker);
    if (stopping) return;
    const report = reported.get(worker);
    reported.delete(worker);
    const how = `${describeExit(worker, code, signal)}${report ? `: ${report.message}` : ''}`;
    if (!started) {
      fail(new TacosError(`The gateway did not start: ${how}.`, {hint: "The worker's error is above (stderr)."}));
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths[0] <= now - CRASH_WINDOW_MS) deaths.shift();
    if (deaths.length > count) {
      fail(
        new TacosError(
          `Gateway workers keep dying (${deaths.length} exits within ${CRASH_WINDOW_MS / 1000} s); the last: ${how}.`,
          {
            hint: "The workers' errors are above (stderr): fix the cause and start the gateway again.",
            code: 'WORKERS_CRASHING',
          },
        ),
      );
      return;
    }
    logger.warn(
      {pid: worker.process.pid, code, signal, error: report?.message},
      'gateway worker died; starting another',
    );
    fork();
  };

  const fork = () => {
    const worker = cluster.fork();
    exits.set(worker, new Promise((resolve) => worker.once('exit', () => resolve())));
    worker.on('message', (message: unknown) => {
      if (isIpcMessage<ReadyMessage>(message, READY)) onReady(worker, message);
      else if (isIpcMessage<FailedMessage>(message, FAILED)) {
        reported.set(worker, message);
        // A worker that cannot start says why (a port taken...): that is the gateway's failure.
        if (!started)
          fail(new TacosError(message.message, {hint: message.hint, code: message.code, exitCode: message.exitCode}));
      }
    });
    worker.once('exit', (code: number | null, signal: string | null) => onExit(worker, code, signal));
  };

  try {
    for (let index = 0; index < count; index++) fork();
    const outcome = await Promise.race([
      waitForStopSignal().then((signal) => ({signal})),
      failed.then((error) => ({error})),
    ]);
    stopping = true;
    if ('signal' in outcome) logger.info({signal: outcome.signal}, 'gateway stopping');
    else logger.error({err: outcome.error.message}, 'gateway stopping');
    await stopWorkers(exits, config.shutdownGraceMs + STOP_MARGIN_MS, logger);
    if ('error' in outcome) throw outcome.error;
    logger.info('gateway stopped');
  } finally {
    stopWatching();
    rollout.stop();
    stopAnswering();
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
    logger.flush();
  }
}

/** SIGTERM to every worker (each closes cleanly), SIGKILL to those still there after `graceMs`. */
async function stopWorkers(exits: Map<Worker, Promise<void>>, graceMs: number, logger: Logger): Promise<void> {
  const all = Promise.all(exits.values());
  for (const worker of exits.keys()) worker.process.kill('SIGTERM');
  // The timer must not hold the primary once its workers are gone.
  const inTime = await Promise.race([all.then(() => true), sleep(graceMs, false, {ref: false})]);
  if (inTime) return;
  logger.warn(
    {workers: [...exits.keys()].map((worker) => worker.process.pid), grace_ms: graceMs},
    'gateway workers did not stop in time; killing them',
  );
  for (const worker of exits.keys()) worker.process.kill('SIGKILL');
  await all;
}
