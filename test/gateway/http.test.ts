/**
 * The gateway's REST door, end to end: a real redis-server on a free port, the gateway in this
 * process on 127.0.0.1:0, plain fetch as the client. Every request carries a deadline, so a hang
 * fails the test instead of stalling it.
 */
import {once} from 'node:events';
import {readFileSync} from 'node:fs';
import {connect} from 'node:net';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {Redis} from 'ioredis';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {fetchJson, type Answer} from '../helpers/http.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {parseMetrics} from '../helpers/metrics.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PACKAGE_VERSION = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const REQUEST_TIMEOUT_MS = 5000;

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
const extraGateways: TestGateway[] = [];
const gw = () => gateway as TestGateway;

/** One request with a deadline; the body is sent as given (a string is sent raw). */
async function send(
  method: string,
  pathname: string,
  options: {
    body?: unknown;
    raw?: string | ReadableStream<Uint8Array>;
    headers?: Record<string, string>;
    base?: string;
  } = {},
): Promise<Answer> {
  return fetchJson(`${options.base ?? gw().http}${pathname}`, {
    method,
    body: options.body,
    raw: options.raw,
    headers: options.headers,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
}

/** The error envelope with this status and code, and a trace id equal to the X-Request-ID header. */
function expectEnvelope(answer: Answer, status: number, code: string, field?: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(answer.json?.error?.code, answer.text).toBe(code);
  expect(typeof answer.json.error.message).toBe('string');
  expect(answer.json.error.message.length).toBeGreaterThan(0);
  const requestId = answer.headers.get('x-request-id');
  expect(requestId).toMatch(SAFE_REQUEST_ID);
  expect(answer.json.error.trace_id).toBe(requestId);
  if (field !== undefined) expect(answer.json.error.field, answer.text).toBe(field);
}

async function join(
  eventId: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Answer> {
  return send('POST', '/api/v1/queue/join', {body: {event_id: eventId, ...extra}, headers});
}

async function waitingCount(eventId: string): Promise<number> {
  const answer = await send('GET', `/api/v1/queue/stats?event_id=${encodeURIComponent(eventId)}`);
  expect(answer.status, answer.text).toBe(200);
  return answer.json.events[0]?.total_waiting ?? 0;
}

/** Polls until `accept` says yes, at most `deadlineMs` and 200 attempts. */
async function until<T>(
  what: string,
  deadlineMs: number,
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
): Promise<{value: T; ms: number}> {
  const started = Date.now();
  let last: T | undefined;
  for (let attempt = 0; attempt < 200; attempt += 1) {
    try {
      last = await probe();
      if (accept(last)) return {value: last, ms: Date.now() - started};
    } catch (error) {
      last = undefined;
      if (Date.now() - started > deadlineMs) throw error;
    }
    if (Date.now() - started > deadlineMs) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not reached within ${deadlineMs} ms (last: ${JSON.stringify(last)})`);
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host: '127.0.0.1', port});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 2000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNREFUSED');
    });
  });
}

async function gatewayConnections(): Promise<number> {
  const client = new Redis({
    port: redis!.port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await client.connect();
    const list = String(await client.client('LIST'));
    return list.split('\n').filter((line) => / name=tacos-gateway /.test(line)).length;
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  redis = await startRedis();
  gateway = await startTestGateway({REDIS_ADDRESS: redis.address, SERVER_ENVIRONMENT: 'development'});
  // startGateway resolves before its Redis connection is ready (see the 'startup' test); gate on /readyz.
  await waitForReady(gateway);
});

afterAll(async () => {
  for (const extra of extraGateways) await extra.close();
  await gateway?.close();
  await gateway?.close();
  await disposeRedis(redis);
  await disposeRedis(redis);
});

describe('health, version and metrics', () => {
  it('/healthz is 200, /readyz is 200 ready, /version names the version', async () => {
    const healthz = await send('GET', '/healthz');
    expect(healthz.status).toBe(200);
    const readyz = await send('GET', '/readyz');
    expect(readyz.status).toBe(200);
    expect(readyz.json).toMatchObject({status: 'ready'});
    const version = await send('GET', '/version');
    expect(version.status).toBe(200);
    expect(version.json.version).toBe(PACKAGE_VERSION);
  });

  it('/metrics is Prometheus text with http_server_requests_total by method, route and status code', async () => {
    expect((await send('GET', '/healthz')).status).toBe(200);
    expect((await join('evt_metrics')).status).toBe(202);
    expect((await send('GET', '/no/such/route-a1b2c3')).status).toBe(404);
    const {value: text} = await until(
      'metrics list the requests',
      3000,
      async () => {
        const answer = await send('GET', '/metrics');
        expect(answer.status).toBe(200);
        expect(answer.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
        return answer.text;
      },
      (body) => body.includes('route="/api/v1/queue/join"'),
    );
    expect(text).toMatch(/^# TYPE http_server_requests_total counter$/m);
    expect(text).toMatch(/^# TYPE http_server_requests_duration_seconds histogram$/m);
    const samples = parseMetrics(text).filter((sample) => sample.name === 'http_server_requests_total');
    expect(
      samples.find(
        (sample) =>
          sample.labels.route === '/healthz' && sample.labels.method === 'GET' && sample.labels.status_code === '200',
      )?.value,
    ).toBeGreaterThanOrEqual(1);
    expect(
      samples.find(
        (sample) =>
          sample.labels.route === '/api/v1/queue/join' &&
          sample.labels.method === 'POST' &&
          sample.labels.status_code === '202',
      )?.value,
    ).toBeGreaterThanOrEqual(1);
    // Unknown paths do not become labels (one series per probe would grow without bound).
    expect(text).not.toContain('route-a1b2c3');
  });
});

describe('X-Request-ID', () => {
  it('is echoed when sent', async () => {
    const answer = await send('GET', '/healthz', {headers: {'x-request-id': 'req-echo-0001'}});
    expect(answer.headers.get('x-request-id')).toBe('req-echo-0001');
    const error = await send('GET', '/api/v1/queue/status?token=nope', {headers: {'x-request-id': 'req-echo-0002'}});
    expect(error.headers.get('x-request-id')).toBe('req-echo-0002');
    expect(error.json?.error?.trace_id).toBe('req-echo-0002');
  });

  it('is generated when absent, a new one per request', async () => {
    const first = await send('GET', '/healthz');
    const second = await send('GET', '/healthz');
    expect(first.headers.get('x-request-id')).toMatch(SAFE_REQUEST_ID);
    expect(second.headers.get('x-request-id')).toMatch(SAFE_REQUEST_ID);
    expect(first.headers.get('x-request-id')).not.toBe(second.headers.get('x-request-id'));
  });

  it.each([
    ['spaces', 'has spaces in it'],
    ['300 characters', 'r'.repeat(300)],
    ['markup and quotes', '"><script>alert(1)</script>'],
    ['log injection', 'abc\tinjected=1'],
  ])('a hostile value (%s) is replaced, not echoed', async (_name, hostile) => {
    const answer = await send('GET', '/api/v1/queue/status?token=nope', {headers: {'x-request-id': hostile}});
    const id = answer.headers.get('x-request-id');
    expect(id).not.toBe(hostile);
    expect(id).toMatch(SAFE_REQUEST_ID);
    expect(answer.json?.error?.trace_id).toBe(id);
    expect(answer.text).not.toContain(hostile.trim());
  });
});

describe('bad input: a 4xx with the error envelope, never a 500 or a hang', () => {
  const wellFormedUnknownToken = `${Buffer.from('evt_bad').toString('base64url')}.${'A'.repeat(22)}`;
  const deepNesting = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  type Case = [
    name: string,
    method: string,
    pathname: string,
    options: Parameters<typeof send>[2],
    status: number,
    code: string,
    field?: string,
  ];
  const json = {'content-type': 'application/json'};
  const cases: Case[] = [
    [
      'malformed JSON',
      'POST',
      '/api/v1/queue/join',
      {raw: '{"event_id": "evt_1"', headers: json},
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'trailing garbage after JSON',
      'POST',
      '/api/v1/queue/join',
      {raw: '{"event_id": "evt_1"} x', headers: json},
      400,
      'INVALID_ARGUMENT',
    ],
    ['empty body', 'POST', '/api/v1/queue/join', {raw: '', headers: json}, 400, 'INVALID_ARGUMENT'],
    ['body is an array', 'POST', '/api/v1/queue/join', {body: [{event_id: 'evt_1'}]}, 400, 'INVALID_ARGUMENT'],
    ['body is a string', 'POST', '/api/v1/queue/join', {body: 'evt_1'}, 400, 'INVALID_ARGUMENT'],
    ['body is a number', 'POST', '/api/v1/queue/join', {body: 42}, 400, 'INVALID_ARGUMENT'],
    ['body is null', 'POST', '/api/v1/queue/join', {raw: 'null', headers: json}, 400, 'INVALID_ARGUMENT'],
    ['deeply nested arrays', 'POST', '/api/v1/queue/join', {raw: deepNesting, headers: json}, 400, 'INVALID_ARGUMENT'],
    [
      '__proto__ in the body',
      'POST',
      '/api/v1/queue/join',
      {raw: '{"event_id":"evt_1","__proto__":{"admin":true}}', headers: json},
      400,
      'INVALID_ARGUMENT',
    ],
    ['missing event_id', 'POST', '/api/v1/queue/join', {body: {user_id: 'u1'}}, 400, 'INVALID_ARGUMENT', 'event_id'],
    ['event_id is a number', 'POST', '/api/v1/queue/join', {body: {event_id: 42}}, 400, 'INVALID_ARGUMENT', 'event_id'],
    [
      'event_id is an object',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: {id: 'evt_1'}}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    ['event_id is null', 'POST', '/api/v1/queue/join', {body: {event_id: null}}, 400, 'INVALID_ARGUMENT', 'event_id'],
    [
      'event_id is an array',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: ['evt_1']}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    ['event_id is empty', 'POST', '/api/v1/queue/join', {body: {event_id: ''}}, 400, 'INVALID_ARGUMENT', 'event_id'],
    [
      'event_id with spaces',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt 1'}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'event_id with braces (a Redis hash tag)',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt}{x'}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'event_id with a slash',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: '../evt'}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'event_id with non-ASCII',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'évent'}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'event_id of 129 characters',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'e'.repeat(129)}},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'user_id of 129 characters',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt_1', user_id: 'u'.repeat(129)}},
      400,
      'INVALID_ARGUMENT',
      'user_id',
    ],
    [
      'user_id is a number',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt_1', user_id: 7}},
      400,
      'INVALID_ARGUMENT',
      'user_id',
    ],
    [
      'Idempotency-Key with spaces',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt_1'}, headers: {'idempotency-key': 'a key with spaces'}},
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'Idempotency-Key of 300 characters',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt_1'}, headers: {'idempotency-key': 'k'.repeat(300)}},
      400,
      'INVALID_ARGUMENT',
    ],
    ['status of a garbage token', 'GET', '/api/v1/queue/status?token=garbage', {}, 404, 'TOKEN_NOT_FOUND'],
    [
      'status of a well-formed unknown token',
      'GET',
      `/api/v1/queue/status?token=${wellFormedUnknownToken}`,
      {},
      404,
      'TOKEN_NOT_FOUND',
    ],
    [
      'status of a 10 000-character token',
      'GET',
      `/api/v1/queue/status?token=${'t'.repeat(10_000)}`,
      {},
      404,
      'TOKEN_NOT_FOUND',
    ],
    [
      'status of a token with percent-encoded junk',
      'GET',
      `/api/v1/queue/status?token=${encodeURIComponent('a}{b\u0000\n')}`,
      {},
      404,
      'TOKEN_NOT_FOUND',
    ],
    [
      'enter with a garbage token',
      'POST',
      '/api/v1/queue/enter',
      {body: {waiting_token: 'garbage'}},
      404,
      'TOKEN_NOT_FOUND',
    ],
    [
      'enter with a well-formed unknown token',
      'POST',
      '/api/v1/queue/enter',
      {body: {waiting_token: wellFormedUnknownToken}},
      404,
      'TOKEN_NOT_FOUND',
    ],
    ['leave with a garbage token', 'DELETE', '/api/v1/queue/leave?token=garbage', {}, 404, 'TOKEN_NOT_FOUND'],
    [
      'leave with a well-formed unknown token',
      'DELETE',
      `/api/v1/queue/leave?token=${wellFormedUnknownToken}`,
      {},
      404,
      'TOKEN_NOT_FOUND',
    ],
    ['status without a token', 'GET', '/api/v1/queue/status', {}, 400, 'INVALID_ARGUMENT', 'token'],
    ['status with an empty token', 'GET', '/api/v1/queue/status?token=', {}, 400, 'INVALID_ARGUMENT'],
    ['leave without a token', 'DELETE', '/api/v1/queue/leave', {}, 400, 'INVALID_ARGUMENT', 'token'],
    [
      'enter without waiting_token',
      'POST',
      '/api/v1/queue/enter',
      {body: {}},
      400,
      'INVALID_ARGUMENT',
      'waiting_token',
    ],
    [
      'enter with a numeric waiting_token',
      'POST',
      '/api/v1/queue/enter',
      {body: {waiting_token: 12345}},
      400,
      'INVALID_ARGUMENT',
      'waiting_token',
    ],
    [
      'stats of a bad event_id',
      'GET',
      '/api/v1/queue/stats?event_id=evt%20bad',
      {},
      400,
      'INVALID_ARGUMENT',
      'event_id',
    ],
    [
      'body over 16 KiB',
      'POST',
      '/api/v1/queue/join',
      {body: {event_id: 'evt_1', user_id: 'x'.repeat(20_000)}},
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'XML body',
      'POST',
      '/api/v1/queue/join',
      {raw: '<join><event_id>evt_1</event_id></join>', headers: {'content-type': 'application/xml'}},
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'form body',
      'POST',
      '/api/v1/queue/join',
      {raw: 'event_id=evt_1', headers: {'content-type': 'application/x-www-form-urlencoded'}},
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['unknown route', 'GET', '/api/v1/nope', {}, 404, 'NOT_FOUND'],
    ['unknown route with a body', 'POST', '/api/v2/queue/join', {body: {event_id: 'evt_1'}}, 404, 'NOT_FOUND'],
    ['join with GET', 'GET', '/api/v1/queue/join', {}, 405, 'METHOD_NOT_ALLOWED'],
    [
      'a gzip-encoded body',
      'POST',
      '/api/v1/queue/join',
      {raw: '{"event_id":"evt_1"}', headers: {...json, 'content-encoding': 'gzip'}},
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['status with POST', 'POST', '/api/v1/queue/status?token=x', {body: {}}, 405, 'METHOD_NOT_ALLOWED'],
  ];

  it.each(cases)('%s', async (_name, method, pathname, options, status, code, field) => {
    const answer = await send(method, pathname, options);
    expectEnvelope(answer, status, code, field);
    expect(answer.ms).toBeLessThan(REQUEST_TIMEOUT_MS);
  });

  it('an oversized body streamed without Content-Length is refused with 413, not read to the end', async () => {
    const chunk = new TextEncoder().encode(`{"event_id":"evt_1","user_id":"${'x'.repeat(4096)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Bounded: at most 1 MiB, far more than the 16 KiB limit.
        if (sent >= 256) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    let answer: Answer | undefined;
    try {
      answer = await send('POST', '/api/v1/queue/join', {raw: stream, headers: {'content-type': 'application/json'}});
    } catch (error) {
      // The server may close the connection while the client is still sending: that is a refusal too,
      // as long as it is not a hang (AbortSignal.timeout) .
      expect((error as Error).name).not.toBe('TimeoutError');
    }
    if (answer) expectEnvelope(answer, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a text/plain body (what a browser sends without a preflight) is 415, as other media types, without joining anyone', async () => {
    const before = await waitingCount('evt_textplain');
    const answer = await send('POST', '/api/v1/queue/join', {
      raw: '{"event_id":"evt_textplain"}',
      headers: {'content-type': 'text/plain'},
    });
    expectEnvelope(answer, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await waitingCount('evt_textplain')).toBe(before);
  });

  it('a body with a __proto__ or constructor.prototype key is refused saying so, not as invalid JSON', async () => {
    for (const raw of [
      '{"event_id":"evt_1","__proto__":{"admin":true}}',
      '{"event_id":"evt_1","constructor":{"prototype":{"admin":true}}}',
    ]) {
      const answer = await send('POST', '/api/v1/queue/join', {raw, headers: {'content-type': 'application/json'}});
      expectEnvelope(answer, 400, 'INVALID_ARGUMENT');
      expect(answer.json.error.message).toMatch(/__proto__ or constructor\.prototype/);
    }
  });

  it('a known path asked with another method is 405 with Allow, HEAD included', async () => {
    const answer = await send('GET', '/api/v1/queue/join');
    expect(answer.headers.get('allow')).toBe('POST');
    const head = await fetch(`${gw().http}/api/v1/queue/join`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    expect([head.status, head.headers.get('allow')]).toEqual([405, 'POST']);
  });

  it('a join at the path with a trailing slash is a join (its CORS preflight is answered too)', async () => {
    const answer = await send('POST', '/api/v1/queue/join/', {body: {event_id: 'evt_trailing_slash'}});
    expect(answer.status, answer.text).toBe(202);
    expect(answer.json.position_hint).toBe(1);
  });

  it('a plain OPTIONS (no Origin) is answered, not refused as a bad preflight', async () => {
    const answer = await fetch(`${gw().http}/api/v1/queue/join`, {
      method: 'OPTIONS',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    expect(answer.status).toBe(204);
  });

  it.each([
    ['a control byte in a header', 'X-Request-ID: a\x01b\r\n', 'Content-Length: 2\r\n'],
    ['both Content-Length and Transfer-Encoding', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 2\r\n'],
  ])(
    'a request node cannot read as HTTP (%s) gets the error envelope, and its connection closes',
    async (_name, header, length) => {
      const socket = connect(gw().httpPort, '127.0.0.1');
      socket.on('error', () => undefined);
      let reply = '';
      socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
      const closed = once(socket, 'close');
      socket.write(
        `POST /api/v1/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${header}${length}\r\n{}`,
      );
      await closed;
      const [head, body] = reply.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(head).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/);
      const requestId = /\r\nx-request-id: ([^\r]+)/.exec(head)?.[1];
      expect(requestId).toMatch(SAFE_REQUEST_ID);
      expect(JSON.parse(body).error).toMatchObject({code: 'INVALID_ARGUMENT', trace_id: requestId});
    },
  );

  it('after all that the gateway still serves, and no request ended in a 5xx', async () => {
    const answer = await join('evt_after_bad_input');
    expect(answer.status).toBe(202);
    const metrics = parseMetrics((await send('GET', '/metrics')).text);
    const errors = metrics.filter(
      (sample) => sample.name === 'http_server_requests_total' && /^5/.test(sample.labels.status_code ?? ''),
    );
    expect(errors).toEqual([]);
  });
});

describe('join is answered alike by its direct path and by fastify', () => {
  // A JSON body of known length is served straight from node:http; the same body streamed (chunked,
  // no Content-Length) goes through fastify. Both must give the same answer.
  const streamed = (text: string) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    });
  const VOLATILE_HEADERS = new Set(['date', 'content-length', 'x-request-id', 'keep-alive', 'connection']);

  /** Status, the headers that do not change per request, and the body with its request id checked and taken out. */
  function comparable(answer: Answer, mask: (body: any) => any = (body) => body) {
    const headers = Object.fromEntries([...answer.headers].filter(([name]) => !VOLATILE_HEADERS.has(name)));
    const body = answer.json === undefined ? answer.text : structuredClone(answer.json);
    if (body?.error) {
      expect(body.error.trace_id).toBe(answer.headers.get('x-request-id'));
      delete body.error.trace_id;
    }
    return {status: answer.status, headers, body: mask(body)};
  }

  async function bothPaths(text: string, headers: Record<string, string> = {}) {
    const all = {'content-type': 'application/json', 'x-request-id': 'same-id-both-paths', ...headers};
    const direct = await send('POST', '/api/v1/queue/join', {raw: text, headers: all});
    const viaFastify = await send('POST', '/api/v1/queue/join', {raw: streamed(text), headers: all});
    expect(direct.headers.get('x-request-id')).toBe('same-id-both-paths');
    expect(viaFastify.headers.get('x-request-id')).toBe('same-id-both-paths');
    return {direct, viaFastify};
  }

  it.each([
    ['malformed JSON', '{"event_id": "evt_1"'],
    ['trailing garbage', '{"event_id": "evt_1"} x'],
    ['an array', '[{"event_id":"evt_1"}]'],
    ['null', 'null'],
    ['__proto__', '{"event_id":"evt_1","__proto__":{"admin":true}}'],
    ['constructor.prototype', '{"event_id":"evt_1","constructor":{"prototype":{"admin":true}}}'],
    ['no event_id', '{"user_id":"u1"}'],
    ['a numeric event_id', '{"event_id":42}'],
    ['a bad event_id', '{"event_id":"evt }{ 1"}'],
    ['a long user_id', `{"event_id":"evt_1","user_id":"${'u'.repeat(129)}"}`],
  ])('refusing %s', async (_name, text) => {
    const {direct, viaFastify} = await bothPaths(text);
    expect(direct.status).toBe(400);
    expect(comparable(direct)).toEqual(comparable(viaFastify));
  });

  it('refusing a bad Idempotency-Key', async () => {
    const {direct, viaFastify} = await bothPaths('{"event_id":"evt_both"}', {'idempotency-key': 'a key with spaces'});
    expect(direct.status).toBe(400);
    expect(comparable(direct)).toEqual(comparable(viaFastify));
  });

  it('joining, with CORS headers for a browser, and the same tokens for a replayed Idempotency-Key', async () => {
    const event = `evt_both_${Date.now()}`;
    const headers = {origin: 'http://localhost:3000'};
    const {direct, viaFastify} = await bothPaths(JSON.stringify({event_id: event, user_id: 'u1'}), headers);
    expect(direct.status).toBe(202);
    expect(direct.headers.get('access-control-allow-origin')).toBe('*');
    const tokenless = (body: any) => ({
      ...body,
      waiting_token: typeof body.waiting_token,
      position_hint: typeof body.position_hint,
    });
    expect(comparable(direct, tokenless)).toEqual(comparable(viaFastify, tokenless));
    expect([direct.json.position_hint, viaFastify.json.position_hint]).toEqual([1, 2]);

    const keyed = {...headers, 'idempotency-key': `both-paths-${Date.now()}`};
    const first = await send('POST', '/api/v1/queue/join', {body: {event_id: event}, headers: keyed});
    const replayed = await bothPaths(JSON.stringify({event_id: event}), keyed);
    expect(replayed.direct.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.direct.json).toEqual(first.json);
    expect(comparable(replayed.direct)).toEqual(comparable(replayed.viaFastify));
    expect(await waitingCount(event)).toBe(3);
  });

  it('logging a join whose caller left before the answer with the status it got, as fastify does', async () => {
    const admin = new Redis({port: redis!.port, host: '127.0.0.1', maxRetriesPerRequest: 0});
    try {
      // Writes wait in Redis for 600 ms: the caller leaves while its join is held there.
      await admin.call('CLIENT', 'PAUSE', '600', 'WRITE');
      const body = JSON.stringify({event_id: `evt_left_${Date.now()}`});
      const socket = connect(gw().httpPort, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        `POST /api/v1/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: left-early\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
      const {value: line} = await until(
        'the join is logged',
        3000,
        async () => gw().logs.find((entry) => entry.req_id === 'left-early'),
        Boolean,
      );
      // A caller gone before its join is sent gets no join (499 CANCELLED): nobody would hold its place.
      expect(line).toMatchObject({msg: 'http request', route: '/api/v1/queue/join', status: 499});
    } finally {
      admin.disconnect();
    }
  });

  it('counting both in the metrics and logging both, with their request ids', async () => {
    const joinedOk = async () => {
      const samples = parseMetrics((await send('GET', '/metrics')).text);
      return (
        samples.find(
          (sample) =>
            sample.name === 'http_server_requests_total' &&
            sample.labels.route === '/api/v1/queue/join' &&
            sample.labels.status_code === '202',
        )?.value ?? 0
      );
    };
    const before = await joinedOk();
    const event = JSON.stringify({event_id: `evt_logged_${Date.now()}`});
    const direct = await send('POST', '/api/v1/queue/join', {
      raw: event,
      headers: {'content-type': 'application/json', 'x-request-id': 'logged-direct'},
    });
    const viaFastify = await send('POST', '/api/v1/queue/join', {
      raw: streamed(event),
      headers: {'content-type': 'application/json', 'x-request-id': 'logged-fastify'},
    });
    expect([direct.status, viaFastify.status]).toEqual([202, 202]);
    await until('both joins counted', 3000, joinedOk, (count) => count === before + 2);
    const lines = gw().logs.filter((line) => line.msg === 'http request' && String(line.req_id).startsWith('logged-'));
    const shape = {
      level: 'info',
      service: 'gateway',
      method: 'POST',
      route: '/api/v1/queue/join',
      status: 202,
      ms: expect.any(Number),
    };
    expect(lines).toEqual([
      expect.objectContaining({...shape, req_id: 'logged-direct'}),
      expect.objectContaining({...shape, req_id: 'logged-fastify'}),
    ]);
  });
});

describe('Idempotency-Key on join', () => {
  it('the same key and body answer the first response again without a new entry', async () => {
    const event = `evt_idem_${Date.now()}`;
    expect((await join(event, {user_id: 'someone-else'})).status).toBe(202);
    const first = await join(event, {user_id: 'u1'}, {'idempotency-key': 'idem-key-0001'});
    expect(first.status).toBe(202);
    expect(first.json.position_hint).toBe(2);
    expect(await waitingCount(event)).toBe(2);

    const again = await join(event, {user_id: 'u1'}, {'idempotency-key': 'idem-key-0001'});
    expect(again.status).toBe(202);
    expect(again.json.waiting_token).toBe(first.json.waiting_token);
    expect(again.json.position_hint).toBe(first.json.position_hint);
    expect(await waitingCount(event)).toBe(2);
  });

  it('concurrent repeats of the same key make one entry', async () => {
    const event = `evt_idem_conc_${Date.now()}`;
    const answers = await Promise.all(
      Array.from({length: 8}, () => join(event, {user_id: 'u1'}, {'idempotency-key': 'idem-key-conc'})),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(202));
    expect(new Set(answers.map((answer) => answer.json.waiting_token)).size).toBe(1);
    expect(await waitingCount(event)).toBe(1);
  });

  it('the same key with another body is 409 IDEMPOTENCY_CONFLICT and joins no one', async () => {
    const event = `evt_idem_conflict_${Date.now()}`;
    const other = `${event}_other`;
    expect((await join(event, {user_id: 'u1'}, {'idempotency-key': 'idem-key-0002'})).status).toBe(202);

    expectEnvelope(
      await join(event, {user_id: 'u2'}, {'idempotency-key': 'idem-key-0002'}),
      409,
      'IDEMPOTENCY_CONFLICT',
    );
    expectEnvelope(
      await join(event, {user_id: 'u1', session_id: 's2'}, {'idempotency-key': 'idem-key-0002'}),
      409,
      'IDEMPOTENCY_CONFLICT',
    );
    expectEnvelope(
      await join(other, {user_id: 'u1'}, {'idempotency-key': 'idem-key-0002'}),
      409,
      'IDEMPOTENCY_CONFLICT',
    );
    expect(await waitingCount(event)).toBe(1);
    expect(await waitingCount(other)).toBe(0);
  });

  it('the same key sent at once for two events joins only one of them', async () => {
    const first = `evt_idem_race_a_${Date.now()}`;
    const second = `evt_idem_race_b_${Date.now()}`;
    const answers = await Promise.all([
      join(first, {user_id: 'u1'}, {'idempotency-key': 'idem-key-race'}),
      join(second, {user_id: 'u1'}, {'idempotency-key': 'idem-key-race'}),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([202, 409]);
    expect((await waitingCount(first)) + (await waitingCount(second))).toBe(1);
  });
});

describe('Redis stopped and back', () => {
  it('queue calls fail fast with 503 UNAVAILABLE, /readyz says why, and the gateway recovers without a restart', async () => {
    const event = `evt_outage_${Date.now()}`;
    const before = await join(event);
    expect(before.status).toBe(202);
    const token = before.json.waiting_token as string;

    await redis!.stop(true);
    try {
      const calls: Array<[string, () => Promise<Answer>]> = [
        ['join', () => join(event)],
        ['status', () => send('GET', `/api/v1/queue/status?token=${encodeURIComponent(token)}`)],
        ['enter', () => send('POST', '/api/v1/queue/enter', {body: {waiting_token: token}})],
        ['leave', () => send('DELETE', `/api/v1/queue/leave?token=${encodeURIComponent(token)}`)],
        ['stats', () => send('GET', `/api/v1/queue/stats?event_id=${event}`)],
        ['stats of all events', () => send('GET', '/api/v1/queue/stats')],
        ['join again', () => join(event)],
      ];
      for (const [name, call] of calls) {
        const answer = await call();
        expectEnvelope(answer, 503, 'UNAVAILABLE');
        expect(answer.ms, `${name} took ${Math.round(answer.ms)} ms`).toBeLessThan(1500);
      }
      const readyz = await send('GET', '/readyz');
      expect(readyz.status).toBe(503);
      expect(readyz.json?.reason).toMatch(/redis/i);
      expect(readyz.ms).toBeLessThan(1500);
      // Liveness is not readiness: the process itself is fine.
      expect((await send('GET', '/healthz')).status).toBe(200);
    } finally {
      await redis!.restart();
    }

    const back = await until(
      '/readyz is 200 again',
      10_000,
      () => send('GET', '/readyz'),
      (answer) => answer.status === 200,
    );
    expect(back.value.json).toMatchObject({status: 'ready'});
    const after = await join(event);
    expect(after.status, after.text).toBe(202);
    // The restarted Redis kept nothing (no persistence): the new join is first in line.
    expect(after.json.position_hint).toBe(1);
    const status = await send('GET', `/api/v1/queue/status?token=${encodeURIComponent(after.json.waiting_token)}`);
    expect(status.status).toBe(200);
    expect(status.json.position).toBe(1);
  });

  it('after Redis comes back empty, an event this gateway knew is listed by stats (and so swept) again', async () => {
    const event = `evt_relisted_${Date.now()}`;
    expect((await join(event)).status).toBe(202);
    const listedBefore = await send('GET', '/api/v1/queue/stats');
    expect((listedBefore.json.events as Array<{event_id: string}>).map((entry) => entry.event_id)).toContain(event);

    // A restart without persistence (or a failover, or FLUSHALL) loses every key.
    await redis!.stop(true);
    await redis!.restart();
    await until(
      '/readyz is 200 again',
      10_000,
      () => send('GET', '/readyz'),
      (answer) => answer.status === 200,
    );

    expect((await join(event)).status).toBe(202);
    const all = await send('GET', '/api/v1/queue/stats');
    expect(all.status).toBe(200);
    const listed = (all.json.events as Array<{event_id: string; total_waiting: number}>).find(
      (entry) => entry.event_id === event,
    );
    expect(listed, `${event} is in GET /api/v1/queue/stats: ${all.text}`).toBeDefined();
    expect(listed?.total_waiting).toBe(1);
  });
});

describe('startup', () => {
  it('serves queue calls as soon as startGateway resolves, when Redis is up', async () => {
    const fresh = await startTestGateway({REDIS_ADDRESS: redis!.address, SERVER_ENVIRONMENT: 'development'});
    extraGateways.push(fresh);
    try {
      const event = `evt_startup_${Date.now()}`;
      const answers = await Promise.all(
        [1, 2, 3].map((n) =>
          send('POST', '/api/v1/queue/join', {base: fresh.http, body: {event_id: event, user_id: `u${n}`}}),
        ),
      );
      expect(answers.map((answer) => [answer.status, answer.json?.error?.message])).toEqual([
        [202, undefined],
        [202, undefined],
        [202, undefined],
      ]);
    } finally {
      await fresh.close();
    }
  });
});

describe('REDIS_AUTO_PIPELINING=true', () => {
  it('joins in one burst, on a Redis that has not loaded the scripts, each with its own place', async () => {
    const client = new Redis({port: redis!.port, lazyConnect: true});
    await client.connect();
    try {
      // The pipeline must load the script itself (NOSCRIPT), as after a Redis restart.
      await client.script('FLUSH');
    } finally {
      client.disconnect();
    }
    const pipelined = await startTestGateway({
      REDIS_ADDRESS: redis!.address,
      SERVER_ENVIRONMENT: 'development',
      REDIS_AUTO_PIPELINING: 'true',
    });
    extraGateways.push(pipelined);
    try {
      await waitForReady(pipelined);
      const event = `evt_pipelined_${Date.now()}`;
      const answers = await Promise.all(
        Array.from({length: 20}, (_, n) =>
          send('POST', '/api/v1/queue/join', {base: pipelined.http, body: {event_id: event, user_id: `u${n}`}}),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(202));
      const positions = answers.map((answer) => answer.json.position_hint as number).sort((a, b) => a - b);
      expect(positions).toEqual(Array.from({length: 20}, (_, n) => n + 1));
      const status = await send(
        'GET',
        `/api/v1/queue/status?token=${encodeURIComponent(answers[0].json.waiting_token)}`,
        {base: pipelined.http},
      );
      expect(status.status).toBe(200);
    } finally {
      await pipelined.close();
    }
  });
});

describe('graceful stop', () => {
  it('close() twice resolves both times, finishes what it took, and frees both ports and its Redis connections', async () => {
    const baseline = await gatewayConnections();
    const second = await startTestGateway({REDIS_ADDRESS: redis!.address, SERVER_ENVIRONMENT: 'development'});
    extraGateways.push(second);
    const base = second.http;
    // startGateway resolves before its Redis connection is ready; callers gate on /readyz, as `tacos up` does.
    await waitForReady(second);
    const event = `evt_stop_${Date.now()}`;
    const first = await Promise.all(
      [1, 2, 3].map((n) => send('POST', '/api/v1/queue/join', {base, body: {event_id: event, user_id: `u${n}`}})),
    );
    expect(first.map((answer) => answer.status)).toEqual([202, 202, 202]);
    expect(await gatewayConnections()).toBeGreaterThan(baseline);

    // A few more in flight while it stops: each ends (an answer or a refused connection), none hangs.
    const late = [4, 5, 6].map((n) =>
      send('POST', '/api/v1/queue/join', {base, body: {event_id: event, user_id: `u${n}`}}).then(
        (answer) => answer.status,
        (error: Error) => error.name,
      ),
    );
    const started = Date.now();
    const closes = [second.close(), second.close()];
    await expect(Promise.all(closes)).resolves.toBeDefined();
    expect(Date.now() - started).toBeLessThan(5000);
    for (const outcome of await Promise.all(late)) {
      expect(outcome).not.toBe('TimeoutError');
      if (typeof outcome === 'number') expect([202, 503]).toContain(outcome);
    }
    await expect(second.close()).resolves.toBeUndefined();

    expect(await refusesConnections(second.httpPort)).toBe(true);
    expect(await refusesConnections(second.grpcPort!)).toBe(true);
    await until(
      'the stopped gateway closed its Redis connections',
      3000,
      gatewayConnections,
      (count) => count === baseline,
    );
    // The other gateway is untouched.
    expect((await send('GET', '/readyz')).status).toBe(200);
  });
});
