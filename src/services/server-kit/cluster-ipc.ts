import cluster, {type Worker} from 'node:cluster';
import {errorMessage} from '../errors.js';

/** Whether a message over cluster IPC is ours of this type (the channel also carries node:cluster's own). */
export function isIpcMessage<T extends {type: string}>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as {type?: unknown}).type === type;
}

/**
 * Requests over cluster IPC that wait, at most a while, for the reply carrying their id: the worker's
 * ask to the primary and the primary's collect from each worker. `Peer` tells who was asked.
 */
export class PendingReplies<Peer, Reply extends {id: number}> {
  private readonly waiting = new Map<number, {peer: Peer; settle: (reply: Reply | Error | undefined) => void}>();
  private nextId = 0;

  /**
   * Sends through `send` a request with a new id. Resolves with the reply, or an Error (no reply
   * within `timeoutMs`, or what `failed` was given), or undefined: the peer is gone (`abandon`).
   */
  request(
    peer: Peer,
    timeoutMs: number,
    timedOut: () => Error,
    send: (id: number, failed: (reason: Error | undefined) => void) => void,
  ): Promise<Reply | Error | undefined> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const settle = (reply: Reply | Error | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(reply);
      };
      const timer = setTimeout(() => settle(timedOut()), timeoutMs);
      this.waiting.set(id, {peer, settle});
      send(id, settle);
    });
  }

  /** A reply: it settles its request, if that is still waiting. */
  reply(message: Reply): void {
    this.waiting.get(message.id)?.settle(message);
  }

  /** The peer went away: its requests settle with nothing to count. */
  abandon(peer: Peer): void {
    for (const each of this.waiting.values()) if (each.peer === peer) each.settle(undefined);
  }
}

/** Per worker, in the primary; the worker waits a little longer for the primary's answer. */
const COLLECT_TIMEOUT_MS = 3000;
const ASK_TIMEOUT_MS = 5000;

interface GatherMessage {
  type: string;
  id: number;
  item?: unknown;
  items?: unknown[];
  error?: string;
}

/**
 * A gather over a cluster's workers: any worker asks the primary (`topic:ask`), which collects one
 * item from each listening worker (`topic:collect` / `topic:collected`) and answers with them all
 * (`topic:answer`). The worker's half: answers the primary's collects with `produce()`. Returns the stop.
 */
export function answerGathers(topic: string, produce: () => unknown): () => void {
  const onMessage = (message: unknown) => {
    if (!isIpcMessage<GatherMessage>(message, `${topic}:collect`)) return;
    let reply: {item?: unknown; error?: string};
    try {
      reply = {item: produce()};
    } catch (error) {
      reply = {error: errorMessage(error)};
    }
    // A primary already gone cannot be answered: nothing to do.
    process.send?.({type: `${topic}:collected`, id: message.id, ...reply}, () => undefined);
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

const asks = new PendingReplies<'primary', GatherMessage>();
const askTopics = new Set<string>();

/** In a worker: the items of every listening worker for `topic`, this one's included. */
export async function gatherOverWorkers<T>(topic: string): Promise<T[]> {
  if (!askTopics.has(topic)) {
    askTopics.add(topic);
    process.on('message', (message) => {
      if (isIpcMessage<GatherMessage>(message, `${topic}:answer`)) asks.reply(message);
    });
  }
  const reply = await asks.request(
    'primary',
    ASK_TIMEOUT_MS,
    () => new Error(`The gateway's primary process did not answer within ${ASK_TIMEOUT_MS} ms.`),
    (id, failed) =>
      process.send
        ? process.send({type: `${topic}:ask`, id}, (error: Error | null) => error && failed(error))
        : failed(new Error('no primary process')),
  );
  if (reply instanceof Error) throw reply;
  if (reply?.error !== undefined) throw new Error(reply.error);
  return (reply?.items ?? []) as T[];
}

/** The primary's half: answers each worker's ask for `topic` with the items of `members()`. Returns the stop. */
export function serveGathers(topic: string, members: () => Worker[]): () => void {
  const collecting = new PendingReplies<Worker, GatherMessage>();
  const collect = async (worker: Worker): Promise<unknown[]> => {
    const reply = await collecting.request(
      worker,
      COLLECT_TIMEOUT_MS,
      () => new Error(`worker ${worker.process.pid} did not answer within ${COLLECT_TIMEOUT_MS} ms`),
      // Not sent: the worker is going away, with nothing to give.
      (id, failed) => worker.send({type: `${topic}:collect`, id}, (error) => error && failed(undefined)),
    );
    if (reply instanceof Error) throw reply;
    if (reply?.error !== undefined) throw new Error(reply.error);
    return reply === undefined ? [] : [reply.item];
  };
  const answer = (worker: Worker, id: number) =>
    void Promise.all(members().map(collect))
      .then(
        (all) => ({items: all.flat()}),
        (error: unknown) => ({error: errorMessage(error)}),
      )
      .then((reply) => worker.isConnected() && worker.send({type: `${topic}:answer`, id, ...reply}, () => undefined));
  const onMessage = (worker: Worker, message: unknown) => {
    if (isIpcMessage<GatherMessage>(message, `${topic}:collected`)) collecting.reply(message);
    else if (isIpcMessage<GatherMessage>(message, `${topic}:ask`)) answer(worker, message.id);
  };
  const onExit = (worker: Worker) => collecting.abandon(worker);
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return () => {
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
  };
}
