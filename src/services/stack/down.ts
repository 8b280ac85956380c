import {setTimeout as sleep} from 'node:timers/promises';
import {stateDir} from '../paths.js';
import {isSameProcess, readLiveState, removeState, signalGroup} from './state.js';
import {STOP_GRACE_MS} from './supervisor.js';

/**
 * Stops the running stack from any terminal: the supervisor stops its services in reverse order;
 * whatever is still running after the grace period is killed. Returns the services stopped, or
 * undefined when no stack was running (stopping twice is fine).
 */
export async function down(): Promise<string[] | undefined> {
  const dir = stateDir();
  const {state} = await readLiveState(dir);
  if (!state) return undefined;
  signalProcess(state.supervisor.pid, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS * state.services.length + 5000;
  while (Date.now() < deadline && (await isSameProcess(state.supervisor))) await sleep(50);
  for (const service of state.services) {
    if (service.process && (await isSameProcess(service.process))) signalGroup(service.process.pid, 'SIGKILL');
  }
  if (await isSameProcess(state.supervisor)) signalProcess(state.supervisor.pid, 'SIGKILL');
  await removeState(dir);
  return state.services
    .filter((service) => service.state !== 'reused')
    .map((service) => service.name)
    .reverse();
}

/** A process that exits between our check and the signal is fine. */
function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
