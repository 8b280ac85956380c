/**
 * Queue updates for browsers (issue 18): a waiting token followed over a WebSocket and over SSE on
 * the gateway's HTTP port, real gateways on a real redis-server, real `ws` and EventSource clients.
 */
import {randomUUID} from 'node:crypto';
import {EventSource} from 'eventsource';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {WebSocket} from 'ws';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {eventually} from '../helpers/stack.js';

type Json = Record<string, any>;

const RUN = randomUUID().slice(0, 8);
let eventCount = 0;
const newEvent = (name: string) => `${name}-${RUN}-${++eventCount}`;

let redis: RedisProcess | undefined;
const gateways: TestGateway[] = [];
/**
 * Position 1 may enter, nobody else (no minimum wait): a token's messages change only when the
 * line moves, never with time. Pings every 200 ms; two streams per token.
 */
let gw: TestGateway;
/** The same settings on the same Redis: another gateway process. */
let gw2: TestGateway;
/** One live socket at most; browsers only from http://allowed.test. */
let strict: TestGateway;

const LINE = {
  QUEUE_INSTANT_ADMISSION_POSITIONS: '1',
  QUEUE_MAX_ADMISSION_POSITION: '1',
  QUEUE_ADMISSION_MIN_WAIT: '0ms',
  LIVE_PING_INTERVAL: '200ms',
  GRPC_MAX_STREAMS_PER_TOKEN: '2',
};

async function start(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startTestGateway({REDIS_ADDRESS: redis!.address, ...LINE, ...env});
  gateways.push(gateway);
  await waitForReady(gateway);
  return gateway;
}

beforeAll(async () => {
  redis = await startRedis();
  [gw, gw2, strict] = await Promise.all([
    start({}),
    start({}),
    start({LIVE_MAX_SOCKETS: '1', CORS_ALLOW_ORIGINS: 'http://allowed.test'}),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await disposeRedis(redis);
});

async function join(gateway: TestGateway, eventId: string): Promise<string> {
  const response = await postJson(`${gateway.http}/api/v1/queue/join`, {event_id: eventId});
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body.waiting_token;
}

async function joinInOrder(gateway: TestGateway, eventId: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let index = 0; index < count; index++) tokens.push(await join(gateway, eventId));
  return tokens;
}

async function enter(gateway: TestGateway, token: string): Promise<void> {
  const response = await postJson(`${gateway.http}/api/v1/queue/enter`, {waiting_token: token});
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

async function leave(gateway: TestGateway, token: string): Promise<void> {
  const response = await getJson(`${gateway.http}/api/v1/queue/leave?token=${token}`, {method: 'DELETE'});
  expect(response.status).toBe(200);
}

/** Messages as they arrive, and a bounded wait for the next one that matches. */
class Inbox {
  readonly messages: Json[] = [];
  private waiters: Array<() => void> = [];

  push(message: Json): void {
    this.messages.push(message);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async waitFor(what: string, match: (message: Json) => boolean, timeoutMs = 5000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms; had ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

interface LiveSocket {
  socket: WebSocket;
  inbox: Inbox;
  closed: Promise<{code: number; reason: string}>;
}

function openSocket(gateway: TestGateway, token: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) {
  const socket = new WebSocket(`${gateway.http.replace('http', 'ws')}/api/v1/queue/ws?token=${token}`, options);
  const inbox = new Inbox();
  socket.on('message', (data) => inbox.push(JSON.parse(String(data))));
  const closed = new Promise<{code: number; reason: string}>((resolve) =>
    socket.on('close', (code, reason) => resolve({code, reason: String(reason)})),
  );
  socket.on('error', () => undefined);
  return {socket, inbox, closed} satisfies LiveSocket;
}

/** An upgrade the gateway refuses: its HTTP status and error envelope. */
async function refusedUpgrade(
  url: string,
  headers: Record<string, string> = {},
): Promise<{status: number; body: Json}> {
  const socket = new WebSocket(url, {headers});
  socket.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    socket.on('open', () => {
      socket.terminate();
      reject(new Error(`${url} was upgraded, not refused`));
    });
    socket.on('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({status: response.statusCode ?? 0, body: JSON.parse(text)}));
    });
  });
}

/** What a client shows of a queue update. */
const shown = (message: Json) => ({
  position: message.queueUpdate.position,
  etaSeconds: message.queueUpdate.etaSeconds,
  admissionReady: message.queueUpdate.admissionReady,
  eventType: message.queueUpdate.eventType,
});

/** The states a token at position 3 goes through as the two ahead enter, then as it enters itself. */
const JOURNEY = [
  {position: 3, etaSeconds: 1, admissionReady: undefined, eventType: 'QUEUE_EVENT_TYPE_POSITION_CHANGED'},
  {position: 2, etaSeconds: 1, admissionReady: undefined, eventType: 'QUEUE_EVENT_TYPE_POSITION_CHANGED'},
  {position: 1, etaSeconds: undefined, admissionReady: true, eventType: 'QUEUE_EVENT_TYPE_ADMISSION_READY'},
  {position: undefined, etaSeconds: undefined, admissionReady: true, eventType: 'QUEUE_EVENT_TYPE_ADMISSION_READY'},
];

/** Lets the two ahead enter, then `third`, each step once the client has shown the one before. */
async function walkTheLine(gateway: TestGateway, tokens: string[], inbox: Inbox): Promise<void> {
  const [first, second, third] = tokens;
  await inbox.waitFor('position 3', (message) => message.queueUpdate.position === 3);
  await enter(gateway, first);
  await inbox.waitFor('position 2', (message) => message.queueUpdate.position === 2);
  await enter(gateway, second);
  await inbox.waitFor('ready at 1', (message) => message.queueUpdate.admissionReady === true);
  await enter(gateway, third);
  await inbox.waitFor('admitted', (message) => message.queueUpdate.position === undefined);
}

async function metric(gateway: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gateway.http}/metrics`)).text();
  const sample = parseMetrics(text).find(
    (candidate) =>
      candidate.name === name && Object.entries(labels).every(([key, value]) => candidate.labels[key] === value),
  );
  return sample?.value ?? 0;
}

describe('a waiting token followed from join to admission', () => {
  it('over a WebSocket: every position in order, the admission, then close 1000', async () => {
    const eventId = newEvent('ws');
    const tokens = await joinInOrder(gw, eventId, 3);
    const live = openSocket(gw, tokens[2]);
    await walkTheLine(gw, tokens, live.inbox);
    expect((await live.closed).code).toBe(1000);
    expect(live.inbox.messages.map(shown)).toEqual(JOURNEY);
    for (const message of live.inbox.messages) {
      expect(message.type).toBe('EVENT_TYPE_QUEUE_UPDATE');
      expect(message.queueUpdate.waitingToken).toBe(tokens[2]);
      expect(Date.parse(message.timestamp)).toBeGreaterThan(0);
    }
    expect(Date.parse(live.inbox.messages[0].queueUpdate.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('over SSE (EventSource): the same messages with ids, then the end; the resumed stream is told 204 and stops', async () => {
    const eventId = newEvent('sse');
    const tokens = await joinInOrder(gw, eventId, 3);
    const source = new EventSource(`${gw.http}/api/v1/queue/events?token=${tokens[2]}`);
    const inbox = new Inbox();
    const ids: string[] = [];
    source.onmessage = (event) => {
      ids.push(event.lastEventId);
      inbox.push(JSON.parse(event.data));
    };
    try {
      await walkTheLine(gw, tokens, inbox);
      expect(inbox.messages.map(shown)).toEqual(JOURNEY);
      expect(ids).toEqual(['3.1.0', '2.1.0', '1.0.1', 'admitted']);
      // After the end EventSource reconnects with the last id: the gateway says 204, it stops for good.
      await eventually('the EventSource is closed', async () => (source.readyState === 2 ? true : undefined), 10_000);
      expect(inbox.messages).toHaveLength(4);
    } finally {
      source.close();
    }
  });

  it('a subscriber on one gateway process sees a change made through another', async () => {
    const eventId = newEvent('cross');
    const [first, , third] = await joinInOrder(gw, eventId, 3);
    const live = openSocket(gw2, third);
    try {
      await live.inbox.waitFor('position 3', (message) => message.queueUpdate.position === 3);
      await leave(gw, first);
      await live.inbox.waitFor('position 2 after a leave elsewhere', (message) => message.queueUpdate.position === 2);
    } finally {
      live.socket.close();
    }
  });

  it('SSE resumes with Last-Event-ID: a state the client has is not sent again, the next one is', async () => {
    const eventId = newEvent('resume');
    const [first, second] = await joinInOrder(gw, eventId, 2);
    const controller = new AbortController();
    const response = await fetch(`${gw.http}/api/v1/queue/events?token=${second}`, {
      headers: {'last-event-id': '2.1.0'},
      signal: controller.signal,
    });
    try {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      const readUntil = async (pattern: RegExp) => {
        const deadline = Date.now() + 5000;
        while (!pattern.test(text)) {
          if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(text)}`);
          const chunk = await reader.read();
          if (chunk.done) throw new Error(`the stream ended before ${pattern}: ${JSON.stringify(text)}`);
          text += chunk.value;
        }
      };
      await readUntil(/^retry: \d+\n\n/);
      await leave(gw, first);
      await readUntil(/id: 1\.0\.1\ndata: .*\n\n/);
      // The first event on the stream is the new state: 2.1.0 was not sent again.
      expect(text.match(/^id: .*$/gm)).toEqual(['id: 1.0.1']);
      // The same id as a query parameter works too (for clients that cannot set the header).
      const again = await fetch(`${gw.http}/api/v1/queue/events?token=${second}&last_event_id=1.0.1`, {
        signal: controller.signal,
      });
      expect(again.status).toBe(200);
    } finally {
      controller.abort();
    }
  });
});

describe('refusals, before any upgrade', () => {
  it('an unknown token: 404 TOKEN_NOT_FOUND with the error envelope, as the status route', async () => {
    const token = `wt_${newEvent('nobody')}_${randomUUID()}`;
    const status = await getJson(`${gw.http}/api/v1/queue/status?token=${encodeURIComponent(token)}`);
    const refused = await refusedUpgrade(`${gw.http.replace('http', 'ws')}/api/v1/queue/ws?token=${token}`);
    expect(refused.status).toBe(status.status);
    expect(refused.body.error.code).toBe(status.body.error.code);
    const sse = await getJson(`${gw.http}/api/v1/queue/events?token=${token}`);
    expect(sse.status).toBe(404);
    expect(sse.body.error.code).toBe('TOKEN_NOT_FOUND');
  });

  it('a token with as many streams as allowed: 429 RATE_LIMITED, counted', async () => {
    const token = await join(gw, newEvent('per-token'));
    const open = [openSocket(gw, token), openSocket(gw, token)];
    try {
      await Promise.all(open.map((live) => live.inbox.waitFor('first state', () => true)));
      const refused = await refusedUpgrade(`${gw.http.replace('http', 'ws')}/api/v1/queue/ws?token=${token}`);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(await metric(gw, 'gateway_refusals_total', {door: 'live', reason: 'streams_per_token'})).toBe(1);
    } finally {
      for (const live of open) live.socket.close();
    }
  });

  it('beyond LIVE_MAX_SOCKETS: 503 with the envelope, counted; a browser from an unlisted origin: 403', async () => {
    const eventId = newEvent('cap');
    const [holder, other] = await joinInOrder(strict, eventId, 2);
    const wsBase = `${strict.http.replace('http', 'ws')}/api/v1/queue/ws?token=`;
    expect((await refusedUpgrade(`${wsBase}${holder}`, {origin: 'http://elsewhere.test'})).status).toBe(403);
    const live = openSocket(strict, holder, {headers: {origin: 'http://allowed.test'}});
    try {
      await live.inbox.waitFor('first state', () => true);
      const refused = await refusedUpgrade(`${wsBase}${other}`);
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('UNAVAILABLE');
      expect(refused.body.error.message).toMatch(/LIVE_MAX_SOCKETS/);
      const sse = await getJson(`${strict.http}/api/v1/queue/events?token=${other}`);
      expect(sse.status).toBe(503);
      expect(await metric(strict, 'gateway_refusals_total', {door: 'live', reason: 'socket_cap'})).toBe(2);
      expect(await metric(strict, 'gateway_live_sockets', {kind: 'ws'})).toBe(1);
    } finally {
      live.socket.close();
    }
  });
});

describe('what a client holds is bounded', () => {
  it('a dead peer (no pong) is dropped', async () => {
    const token = await join(gw, newEvent('dead'));
    const live = openSocket(gw, token, {autoPong: false});
    await live.inbox.waitFor('first state', () => true);
    // Pings every 200 ms: the second round finds the first unanswered.
    const closed = await Promise.race([live.closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
    expect(closed).toMatchObject({code: 1006});
  });

  it('a stop with sockets open closes each: WebSocket 1001 going away, SSE ends', async () => {
    const gateway = await start({});
    const eventId = newEvent('stop');
    const [wsToken, sseToken] = await joinInOrder(gateway, eventId, 2);
    const live = openSocket(gateway, wsToken);
    const response = await fetch(`${gateway.http}/api/v1/queue/events?token=${sseToken}`);
    await live.inbox.waitFor('first state', () => true);
    const body = response.text();
    await gateway.close();
    expect((await live.closed).code).toBe(1001);
    expect(await body).toMatch(/^retry: \d+\n\nid: 2\.1\.0\ndata: /);
  });
});
