import {connectivityState, type Client} from '@grpc/grpc-js';

/**
 * Tells listeners each time the target's channel is READY again after it had lost its connection
 * (the server restarted). While anyone listens, a channel that lost its connection is asked to
 * connect again, so a restarted server is noticed without waiting for the next call.
 */
export class ReconnectWatch {
  private readonly listeners = new Set<() => void>();
  private watching = false;
  private closed = false;

  constructor(private readonly client: Client) {}

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.watching && !this.closed) {
      this.watching = true;
      this.watch();
    }
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Stops watching (the channel is closing); safe twice. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  /** Follows the channel's states until it shuts down. */
  private watch(): void {
    const channel = this.client.getChannel();
    let wasReady = false;
    let lost = false;
    const next = () => {
      let state = channel.getConnectivityState(false);
      if (this.closed || state === connectivityState.SHUTDOWN) return;
      if (state === connectivityState.READY) {
        if (lost) for (const listener of [...this.listeners]) listener();
        wasReady = true;
        lost = false;
      } else if (wasReady && (state === connectivityState.IDLE || state === connectivityState.TRANSIENT_FAILURE)) {
        lost = true;
      }
      // Only after a loss, and for someone: a channel that never connected stays idle until a call needs it.
      if (lost && this.listeners.size > 0 && state === connectivityState.IDLE)
        state = channel.getConnectivityState(true);
      // No deadline: the watcher holds no timer, so it never keeps the process alive.
      channel.watchConnectivityState(state, Infinity, next);
    };
    next();
  }
}
