import {Counter, Gauge, type Registry} from 'prom-client';

/** The two kinds of live socket. */
export type LiveKind = 'ws' | 'sse';

/** The live sockets' share of the gateway's /metrics. */
export class LiveMetrics {
  private readonly sockets = new Gauge({
    name: 'gateway_live_sockets',
    help: 'Open live update sockets (WebSocket, SSE), by kind.',
    labelNames: ['kind'] as const,
    registers: [],
  });

  private readonly messages = new Counter({
    name: 'gateway_live_messages_total',
    help: 'Messages sent on live update sockets, by kind.',
    labelNames: ['kind'] as const,
    registers: [],
  });

  private readonly dropped = new Counter({
    name: 'gateway_live_dropped_states_total',
    help: 'States replaced by a newer one before a slow reader could take them (only the newest is kept), by kind.',
    labelNames: ['kind'] as const,
    registers: [],
  });

  /** Per kind, bound once: a message to 20,000 sockets counts without 20,000 label lookups. */
  readonly byKind = {
    ws: this.bound('ws'),
    sse: this.bound('sse'),
  };

  register(registry: Registry): void {
    for (const metric of [this.sockets, this.messages, this.dropped]) registry.registerMetric(metric);
  }

  private bound(kind: LiveKind) {
    return {
      sockets: this.sockets.labels(kind),
      messages: this.messages.labels(kind),
      dropped: this.dropped.labels(kind),
    };
  }
}

export type KindMetrics = LiveMetrics['byKind'][LiveKind];
