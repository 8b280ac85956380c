import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {WATCH_PARENT_ENV, waitForStopSignal} from '../signals.js';
import {STOP_GRACE_MS} from './supervisor.js';

/**
 * Runs a shell command (another gateway build, under `up --gateway-cmd`) so that it stops with the
 * stack like our own services do: on SIGTERM or when `up` is gone (stdin closes), its whole process
 * group gets SIGTERM, then SIGKILL after the grace period. Returns the command's exit code.
 */
export async function runWatched(command: string): Promise<number> {
  // The command's stdin is not `up`'s pipe: a tacos service in it must not take that for `up` gone.
  const {[WATCH_PARENT_ENV]: _watched, ...env} = process.env;
  const child = execa(command, {
    shell: '/bin/sh',
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
    extendEnv: false,
    reject: false,
  });
  const exited = child.then((result) => result.exitCode ?? (result.signal ? 128 : 1));
  const stop = waitForStopSignal();
  const outcome = await Promise.race([exited.then((code) => ({code})), stop.then(() => undefined)]);
  if (outcome) return outcome.code;
  // The signal to our own group reaches the command and all it started; we outlive it to report.
  process.on('SIGTERM', () => undefined);
  signalOwnGroup('SIGTERM');
  const stopped = await Promise.race([
    exited.then(() => true),
    sleep(STOP_GRACE_MS, undefined, {ref: false}).then(() => false),
  ]);
  if (!stopped) signalOwnGroup('SIGKILL');
  return 0;
}

function signalOwnGroup(signal: NodeJS.Signals): void {
  try {
    process.kill(-process.pid, signal);
  } catch {
    // Not a group leader (run by hand): signal the command alone is all we can do safely.
  }
}
