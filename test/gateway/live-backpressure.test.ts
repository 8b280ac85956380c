/**
 * A live socket whose reader is slower than the updates holds the newest state, not a queue: the
 * gateway's live server (real `ws`, real sockets on 127.0.0.1) with a route the test feeds. The
 * reader is made slow on the server's side of the connection (the socket corked: its writes wait
 * in the process, as they do when the kernel's buffers are full), since a loopback kernel would
 * swallow megabytes of small messages before anything waited.
 */
import type {Socket} from 'node:net';
import {Writable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {WebSocket} from 'ws';
import type {LiveChannel} from '../../src/services/gateway/live/channel.js';
import {LiveMetrics} from '../../src/services/gateway/live/live-metrics.js';
import {LiveServer} from '../../src/services/gateway/live/live-server.js';
import {createLogger} from '../../src/services/logging.js';
import {createHttpServer, type HttpServer} from '../../src/services/server-kit/http/server.js';
import {ServerMetrics} from '../../src/services/server-kit/metrics.js';
import {parseMetrics} from '../helpers/metrics.js';

let app: HttpServer;
let live: LiveServer;
let base: string;
const metrics = new ServerMetrics();
/** The server's side of each connection, newest last. */
const serverSockets: Socket[] = [];
/** Each channel the route opened, newest last, and whether its source was stopped. */
const opened: Array<{channel: LiveChannel; stopped: boolean}> = [];

beforeAll(async () => {
  const logger = createLogger(
    'live-test',
    'warn',
    new Writable({
      write: (_chunk, _encoding, done) => done(),
    }),
  );
  app = createHttpServer({logger, metrics, bodyLimitBytes: 1024, notReadyReason: async () => undefined});
  app.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  const liveMetrics = new LiveMetrics();
  liveMetrics.register(metrics.registry);
  live = new LiveServer(
    app,
    [
      {
        wsPath: '/test/ws',
        ssePath: '/test/events',
        capReason: 'streams_per_token',
        async open(_request, channel) {
          const entry = {channel, stopped: false};
          channel.source = {stop: () => (entry.stopped = true)};
          opened.push(entry);
        },
      },
    ],
    {
      // No ping round during these tests: a corked socket would be dropped as a dead reader.
      settings: {pingIntervalMs: 3_600_000, maxSockets: 10, sseRetryMs: 1000},
      logger,
      metrics,
      liveMetrics,
      corsOrigins: ['*'],
    },
  );
  await app.listen({host: '127.0.0.1', port: 0});
  const address = app.server.address();
  base = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await live?.close(1000);
  await app?.close();
});

async function dropped(kind: string): Promise<number> {
  const samples = parseMetrics(await metrics.text());
  return (
    samples.find((sample) => sample.name === 'gateway_live_dropped_states_total' && sample.labels.kind === kind)
      ?.value ?? 0
  );
}

/** Waits (bounded) until `check` holds. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Offers 1,000 states to the newest channel while its socket cannot write, then lets it write: the
 * first went to the socket (and waited there); of the 999 after it only the newest was kept.
 */
async function floodCorked(kind: 'ws' | 'sse'): Promise<LiveChannel> {
  const {channel} = opened.at(-1)!;
  const socket = serverSockets.at(-1)!;
  const droppedBefore = await dropped(kind);
  socket.cork();
  for (let index = 0; index < 1000; index++) channel.offer(state(index), String(index));
  // The one being written (with its frame or SSE lines), nothing queued behind it.
  expect(socket.writableLength).toBeLessThan(state(0).length + 64);
  expect((await dropped(kind)) - droppedBefore).toBe(998);
  socket.uncork();
  return channel;
}

const state = (index: number) => JSON.stringify({queueUpdate: {position: 1000 - index, padding: 'x'.repeat(200)}});

describe('a slow reader gets the newest state, never a queue of them', () => {
  it('WebSocket: 1,000 states offered while the socket cannot write; it holds one, then sends the newest', async () => {
    const received: string[] = [];
    const client = new WebSocket(`ws://${base}/test/ws`);
    client.on('message', (data) => received.push(String(data)));
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const channel = await floodCorked('ws');
    await until('the newest state arrives', () => received.at(-1) === state(999));
    expect(received).toEqual([state(0), state(999)]);
    channel.finish();
    const code = await new Promise((resolve) => client.once('close', resolve));
    expect(code).toBe(1000);
    await until('the source is stopped once the socket is gone', () => opened.at(-1)!.stopped);
  });

  it('SSE: the same, with the newest state id', async () => {
    const controller = new AbortController();
    const response = await fetch(`http://${base}/test/events`, {signal: controller.signal});
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      await until('the channel is open', () => opened.length > 0 && !opened.at(-1)!.channel.closed);
      const channel = await floodCorked('sse');
      channel.finish();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += chunk.value;
      expect(text.match(/^id: .*$/gm)).toEqual(['id: 0', 'id: 999']);
      expect(text).toContain(`data: ${state(999)}\n\n`);
    } finally {
      controller.abort();
    }
  });
});
