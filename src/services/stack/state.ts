import {readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {writeFileAtomically} from '../atomic-file.js';
import {processStartTime} from '../proc.js';
import type {ReadyCheck} from './stack-file.js';

/** A built-in (redis, reservation, payment, gateway) or a service of the stack file. */
export type ServiceName = string;

export interface ProcessIdentity {
  pid: number;
  /** /proc start time: the pid alone may be reused by another program. */
  startTime: string;
}

export interface ServiceState {
  name: ServiceName;
  state: 'starting' | 'ready' | 'restarting' | 'exited' | 'reused';
  process?: ProcessIdentity;
  urls: string[];
  ports: number[];
  logFile?: string;
  restarts: number;
  /** The stack file's readiness check of the service: what `tacos status` probes. */
  check?: ReadyCheck;
}

export interface StackState {
  /** The `tacos up` process that supervises the services. */
  supervisor: ProcessIdentity;
  env: string;
  startedAt: string;
  detached: boolean;
  services: ServiceState[];
}

const stateFile = (dir: string) => path.join(dir, 'state.json');

export async function writeState(dir: string, state: StackState): Promise<void> {
  await writeFileAtomically(stateFile(dir), `${JSON.stringify(state, null, 2)}\n`);
}

export async function readState(dir: string): Promise<StackState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(dir), 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

export async function removeState(dir: string): Promise<void> {
  await rm(stateFile(dir), {force: true});
}

/** The process is the one recorded: alive, and not a reused pid. */
export async function isSameProcess(identity: ProcessIdentity | undefined): Promise<boolean> {
  if (!identity) return false;
  return (await processStartTime(identity.pid)) === identity.startTime;
}

/** Signals a process's group (the process alone if it leads none); one that is already gone is fine. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch {
      // No such group (or already gone): try the process itself.
    }
  }
}

export async function identify(pid: number): Promise<ProcessIdentity> {
  return {pid, startTime: (await processStartTime(pid)) ?? ''};
}

/**
 * The running stack, or undefined. A state whose supervisor is gone (dead, or its pid now another
 * program's) is stale: services it recorded that still run (same pid and start time) are stopped,
 * and the state is removed, never trusted.
 */
export async function readLiveState(dir: string): Promise<{state?: StackState; staleRemoved: boolean}> {
  const state = await readState(dir);
  if (!state) return {staleRemoved: false};
  if (await isSameProcess(state.supervisor)) return {state, staleRemoved: false};
  for (const service of state.services) {
    // Each service leads its process group: the group goes, whatever the service started.
    if (service.process && (await isSameProcess(service.process))) signalGroup(service.process.pid, 'SIGTERM');
  }
  await removeState(dir);
  return {staleRemoved: true};
}
