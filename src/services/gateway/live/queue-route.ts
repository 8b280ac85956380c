import {TacosError} from '../../errors.js';
import {invalidArgument} from '../../server-kit/api-errors.js';
import type {QueueFeed, QueueWatcher} from '../queue/queue-feed.js';
import type {QueueState} from '../queue/queue-service.js';
import {CLOSE, type LiveChannel, type LiveSource} from './channel.js';
import type {LiveRoute} from './live-server.js';
import {queueUpdateJson} from './proto-json.js';

/**
 * A waiting token's updates: `GET /api/v1/queue/ws?token=` and `GET /api/v1/queue/events?token=`.
 * Refused before any upgrade when the token is unknown (404 TOKEN_NOT_FOUND, as the status route)
 * or has as many streams as allowed (429); then its state now, each change, and the final one.
 */
export function queueRoute(feed: QueueFeed): LiveRoute {
  return {
    wsPath: '/api/v1/queue/ws',
    ssePath: '/api/v1/queue/events',
    capReason: 'streams_per_token',
    async open(request, channel) {
      const token = request.query.get('token');
      if (!token) throw invalidArgument('token', 'Name the waiting token: ?token=...');
      const stream = new QueueStream(token, channel, feed, request.requestId);
      channel.source = stream;
      const accepted = stream.accepted();
      feed.subscribe(stream);
      await accepted;
    },
  };
}

/** The feed's watcher for one channel: each state as proto3 JSON, the end as the channel's close. */
class QueueStream implements QueueWatcher, LiveSource {
  private settle?: {resolve: () => void; reject: (error: unknown) => void};

  constructor(
    readonly waitingToken: string,
    private readonly channel: LiveChannel,
    private readonly feed: QueueFeed,
    private readonly correlationId: string,
  ) {}

  /** Settles with the first state (the stream is accepted) or the feed's refusal. */
  accepted(): Promise<void> {
    const accepted = new Promise<void>((resolve, reject) => (this.settle = {resolve, reject}));
    // Nobody waits for it when the subscription itself was refused.
    accepted.catch(() => undefined);
    return accepted;
  }

  update(state: QueueState): void {
    const text = queueUpdateJson(state, this.correlationId, Date.now());
    if (text !== undefined) this.channel.offer(text, stateId(state));
    if (state.status !== 'waiting') this.channel.finish();
    this.settle?.resolve();
    this.settle = undefined;
  }

  fail(error: unknown): void {
    if (this.settle) this.settle.reject(error);
    else this.channel.abort(CLOSE.internal, 'the token can no longer be followed; reconnect');
    this.settle = undefined;
  }

  stop(): void {
    this.feed.unsubscribe(this);
    // A client that left before its first state: the upgrade waiting for it gives up.
    this.settle?.reject(new TacosError('The client went away before the stream began.', {code: 'CANCELLED'}));
    this.settle = undefined;
  }
}

/** The SSE id of a state: what the client shows, so a client that resumes with it is not sent it again. */
function stateId(state: QueueState): string {
  if (state.status !== 'waiting') return state.status;
  return `${state.position}.${state.etaSeconds}.${state.admissionReady ? 1 : 0}`;
}
