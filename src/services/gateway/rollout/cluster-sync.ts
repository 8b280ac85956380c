import cluster, {type Worker} from 'node:cluster';
import {answerGathers, gatherOverWorkers, isIpcMessage, serveGathers} from '../../server-kit/cluster-ipc.js';
import {BACKENDS, type BackendName, type Rollback, type RollbackChange, type RolloutController} from './controller.js';
import type {LiveSettings} from './live-settings.js';
import {rolloutState, type RolloutState} from './status.js';

/**
 * How a cluster's workers share the rollout: the primary watches the env file and takes SIGHUP,
 * then tells every worker to reload (each re-reads the file as a single gateway would); a rollback
 * decided or cleared in one worker goes through the primary to all, and to each worker that starts
 * later; GET /api/v1/rollout gathers every worker's state.
 */
const RELOAD = 'tacos:rollout:reload';
const ROLLBACK = 'tacos:rollout:rollback';
const STATE = 'tacos:rollout:state';
const RESET = 'tacos:rollout:reset';

interface ReloadMessage {
  type: typeof RELOAD;
}

interface RollbackMessage extends RollbackChange {
  type: typeof ROLLBACK;
}

interface ResetMessage {
  type: typeof RESET;
}

/** A worker's half: reloads when told, passes its own rollbacks on, takes the others'. Returns the stop. */
export function joinClusterRollout(controller: RolloutController, live: LiveSettings): () => void {
  const onMessage = (message: unknown) => {
    if (isIpcMessage<ReloadMessage>(message, RELOAD)) live.reload();
    else if (isIpcMessage<RollbackMessage>(message, ROLLBACK)) controller.setRollback(message);
  };
  process.on('message', onMessage);
  const stopAnswering = answerGathers(STATE, () => rolloutState(controller, live));
  return () => {
    process.off('message', onMessage);
    stopAnswering();
  };
}

/** In a worker: tells the primary of a rollback this worker decided or cleared. */
export function sendRollbackChange(change: RollbackChange): void {
  // A primary already gone cannot be told; the worker is on its way out then anyway.
  process.send?.({type: ROLLBACK, ...change} satisfies RollbackMessage, () => undefined);
}

/**
 * In a worker: asks the primary to clear every rollback on every worker (POST /api/v1/rollout/reset),
 * whatever this worker knows of them. Resolves once sent: a gather asked after it sees the result.
 */
export function requestClusterReset(): Promise<void> {
  return new Promise((resolve) => process.send?.({type: RESET} satisfies ResetMessage, () => resolve()) ?? resolve());
}

/** In a worker: the state of every listening worker. */
export function gatherRolloutStates(): Promise<RolloutState[]> {
  return gatherOverWorkers<RolloutState>(STATE);
}

/**
 * The primary's half over `members()` (the listening workers): `reload()` tells them all to reload;
 * `joined(worker)` gives a worker that just started the rollbacks in force. Returns with `stop`.
 */
export function leadClusterRollout(members: () => Worker[]) {
  const rollbacks = new Map<BackendName, Rollback>();
  const send = (worker: Worker, message: ReloadMessage | RollbackMessage): unknown =>
    worker.isConnected() && worker.send(message, () => undefined);
  const onMessage = (from: Worker, message: unknown) => {
    if (isIpcMessage<ResetMessage>(message, RESET)) {
      rollbacks.clear();
      for (const worker of members())
        for (const backend of BACKENDS) send(worker, {type: ROLLBACK, backend, rollback: null});
      return;
    }
    if (!isIpcMessage<RollbackMessage>(message, ROLLBACK)) return;
    if (message.rollback) rollbacks.set(message.backend, message.rollback);
    else rollbacks.delete(message.backend);
    for (const worker of members()) if (worker !== from) send(worker, message);
  };
  cluster.on('message', onMessage);
  const stopGathers = serveGathers(STATE, members);
  return {
    reload(): void {
      for (const worker of members()) send(worker, {type: RELOAD});
    },
    joined(worker: Worker): void {
      for (const backend of BACKENDS) {
        const rollback = rollbacks.get(backend);
        if (rollback) send(worker, {type: ROLLBACK, backend, rollback});
      }
    },
    stop(): void {
      cluster.off('message', onMessage);
      stopGathers();
    },
  };
}
