import type {ServerResponse} from 'node:http';
import type {WebSocket} from 'ws';
import type {KindMetrics} from './live-metrics.js';

/** What feeds a channel; stopped once the channel closes, whatever closed it. */
export interface LiveSource {
  stop(): void;
}

/** WebSocket close codes the gateway sends (README, "Live updates"). */
export const CLOSE = {
  /** After the final message (admitted, expired) or the end of the stream (left). */
  normal: 1000,
  /** The gateway is stopping: reconnect (to another instance). */
  goingAway: 1001,
  /** The first message was not a valid {"access_token": "..."} in time. */
  policy: 1008,
  /** The stream failed inside the gateway (its store is unavailable...): reconnect later. */
  internal: 1011,
} as const;

/**
 * One client's live updates, over a WebSocket or an SSE response, holding at most one message
 * besides the one being written: a reader slower than the updates gets the newest state, the
 * ones in between are dropped (and counted). A message counts as written once the socket has
 * handed it to the kernel (the write's callback); until then the next one waits as `pending`.
 */
export abstract class LiveChannel {
  /** Set by the route once it has started feeding the channel. */
  source?: LiveSource;
  /** Set by a ping round, cleared by a pong (WebSocket) or an empty send buffer (SSE). */
  protected stale = false;
  private pending?: string;
  private pendingId = '';
  private writing = false;
  /** The close to send once nothing is left to write. */
  private closeWith?: {code: number; reason: string};
  private closeSent = false;
  private ended = false;
  /** A message with this id is not sent first (SSE resume: the client has that state). */
  private skipId?: string;
  private readonly written = () => {
    this.writing = false;
    this.flush();
  };

  /** Counted as open from here until the socket is gone, so that opening ones count against the cap too. */
  constructor(
    protected readonly metrics: KindMetrics,
    private readonly onClosed: (channel: LiveChannel) => void,
    resumeFrom?: string,
  ) {
    this.skipId = resumeFrom;
    metrics.sockets.inc();
  }

  get closed(): boolean {
    return this.ended;
  }

  /** The stream ended with nothing left to send (an SSE client that resumes a finished stream gets 204: stop). */
  get nothingToSend(): boolean {
    return this.closeWith !== undefined && this.pending === undefined && !this.writing;
  }

  /** Sends `text` (with `id`, for SSE) as soon as the socket takes it, replacing any message still waiting. */
  offer(text: string, id: string): void {
    if (this.ended || this.closeWith) return;
    if (this.skipId !== undefined) {
      const skip = this.skipId === id;
      this.skipId = undefined;
      if (skip) return;
    }
    if (this.pending !== undefined) this.metrics.dropped.inc();
    this.pending = text;
    this.pendingId = id;
    this.flush();
  }

  /** Ends the stream normally once what is waiting has been written. */
  finish(): void {
    this.closeWith ??= {code: CLOSE.normal, reason: ''};
    this.flush();
  }

  /** Ends without what is waiting, with `code` (WebSocket) or the end of the response (SSE). */
  abort(code: number, reason: string): void {
    this.pending = undefined;
    this.closeWith = {code, reason};
    this.flush();
  }

  /** Once the socket is gone (closed by either side, or dropped): stops the source, once. */
  closedBySocket(): void {
    if (this.ended) return;
    this.ended = true;
    this.pending = undefined;
    this.source?.stop();
    this.metrics.sockets.dec();
    this.onClosed(this);
  }

  /** One ping round: false when the peer has not answered the last one (it is then dropped). */
  abstract ping(): boolean;
  /** Drops the connection without a close handshake. */
  abstract terminate(): void;
  protected abstract ready(): boolean;
  protected abstract write(text: string, id: string, done: () => void): void;
  protected abstract close(code: number, reason: string): void;

  protected flush(): void {
    if (this.ended || this.writing || !this.ready()) return;
    if (this.pending !== undefined) {
      const [text, id] = [this.pending, this.pendingId];
      this.pending = undefined;
      this.writing = true;
      this.metrics.messages.inc();
      this.write(text, id, this.written);
    } else if (this.closeWith && !this.closeSent) {
      this.closeSent = true;
      this.close(this.closeWith.code, this.closeWith.reason);
    }
  }
}

/** A WebSocket client; `attach` once the upgrade is done. */
export class WebSocketChannel extends LiveChannel {
  private socket?: WebSocket;

  attach(socket: WebSocket): void {
    this.socket = socket;
    socket.on('pong', () => (this.stale = false));
    this.flush();
  }

  ping(): boolean {
    if (!this.socket) return true;
    if (this.stale) return false;
    this.stale = true;
    this.socket.ping();
    return true;
  }

  terminate(): void {
    this.socket?.terminate();
  }

  protected ready(): boolean {
    return this.socket !== undefined;
  }

  protected write(text: string, _id: string, done: () => void): void {
    this.socket?.send(text, done);
  }

  protected close(code: number, reason: string): void {
    if (this.socket) this.socket.close(code, reason);
  }
}

/** An SSE response: `attach` once the status line and headers are out. */
export class EventStreamChannel extends LiveChannel {
  private response?: ServerResponse;

  attach(response: ServerResponse): void {
    this.response = response;
    this.flush();
  }

  /**
   * A comment keeps proxies from closing an idle stream. A reader that has not taken the last
   * write for a whole round is not reading: it is dropped (TCP alone would take many minutes).
   */
  ping(): boolean {
    if (!this.response) return true;
    if (this.response.writableLength > 0) {
      if (this.stale) return false;
      this.stale = true;
      return true;
    }
    this.stale = false;
    this.response.write(':\n\n');
    return true;
  }

  terminate(): void {
    this.response?.destroy();
  }

  protected ready(): boolean {
    return this.response !== undefined;
  }

  protected write(text: string, id: string, done: () => void): void {
    this.response?.write(`id: ${id}\ndata: ${text}\n\n`, done);
  }

  protected close(): void {
    this.response?.end();
  }
}
