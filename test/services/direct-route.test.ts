/**
 * The direct path of a JSON route when sending its answer fails (a header value node refuses): the
 * caller's connection closes, the error is logged as ours, and the server goes on serving. A real
 * HTTP server on 127.0.0.1:0; plain fetch as the client.
 */
import {Writable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createHttpServer, type HttpServer} from '../../src/services/server-kit/http/server.js';
import {createLogger} from '../../src/services/logging.js';
import {ServerMetrics} from '../../src/services/server-kit/metrics.js';

const logs: Array<Record<string, unknown>> = [];
let app: HttpServer;
let base = '';

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  app = createHttpServer({
    logger: createLogger('direct-route-test', 'info', sink),
    metrics: new ServerMetrics(),
    bodyLimitBytes: 16_384,
    notReadyReason: async () => undefined,
    jsonRoutes: [
      {
        url: '/echo',
        bodySchema: {type: 'object', required: ['header'], properties: {header: {type: 'string'}}},
        async handle(body: {header: string}) {
          return {status: 200, headers: {'x-echo': body.header}, body: {ok: true}};
        },
      },
    ],
  });
  await app.listen({host: '127.0.0.1', port: 0});
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await app?.close();
});

const post = (header: string) =>
  fetch(`${base}/echo`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({header}),
    signal: AbortSignal.timeout(5000),
  });

describe('direct path: an answer that cannot be sent', () => {
  it('closes the connection, logs an internal error, and keeps serving', async () => {
    await expect(post('line\nbreak')).rejects.toThrow();
    await expect.poll(() => logs.some((line) => line.msg === 'internal error'), {timeout: 5000}).toBe(true);
    const fine = await post('plain');
    expect(fine.status).toBe(200);
    expect(fine.headers.get('x-echo')).toBe('plain');
  });
});
