/**
 * The connection of `tacos call` (and of the REPL): one grpc-js channel per target for reflection
 * and every call, counted as TCP connections at a proxy in front of the test servers; reload() after
 * the server's schema changed; onReconnect() and the next call after a restart on the same port; a
 * call cancelled through its signal; headers of one call only.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {createConnection, createServer, type Server, type Socket} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import {
  callMethod,
  openTarget,
  runCall,
  type ConnectionOptions,
  type Connected,
} from '../../src/services/grpc-client/run-call.js';
import {findMethod} from '../../src/services/grpc-client/invoke.js';
import {jsonObjects, startAllTypesServer, startDefectiveServer, type TestServer} from '../helpers/call-servers.js';

/**
 * A TCP proxy on a fixed port: what a client sees of a server. It counts the connections it
 * accepted; down() drops them all and stops listening (a server stopped), up() listens again on the
 * same port in front of `upstream` (the same server restarted, or another: a new version).
 */
interface Proxy {
  address: string;
  connections: number;
  down(): Promise<void>;
  up(upstream: string): Promise<void>;
}

async function startProxy(upstream: string): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let target = upstream;
  let server: Server;
  const proxy = {address: '', connections: 0} as Proxy;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer((client) => {
        proxy.connections++;
        const [host, upstreamPort] = [target.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(target)![1])];
        const backend = createConnection({host, port: upstreamPort});
        for (const socket of [client, backend]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(backend).pipe(client);
        client.on('close', () => backend.destroy());
        backend.on('close', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as {port: number}).port));
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  const port = await listen(0);
  proxy.address = `127.0.0.1:${port}`;
  proxy.down = close;
  proxy.up = async (next) => {
    target = next;
    await listen(port);
  };
  return proxy;
}

let stateDir: string;
let allTypes: TestServer;
let defective: TestServer;
const opened: Array<{close(): void} | Proxy> = [];

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'tacos-connection-'));
  process.env.TACOS_STATE_DIR = stateDir;
  allTypes = await startAllTypesServer({reflection: 'v1alpha'});
  defective = await startDefectiveServer();
});

afterEach(async () => {
  for (const one of opened.splice(0)) {
    if ('down' in one) await one.down();
    else one.close();
  }
});

afterAll(async () => {
  await allTypes?.stop();
  await defective?.stop();
  delete process.env.TACOS_STATE_DIR;
  await rm(stateDir, {recursive: true, force: true});
});

const options = (address: string, more: Partial<ConnectionOptions> = {}): ConnectionOptions => ({
  address,
  headers: [],
  refresh: false,
  connectTimeoutMs: 3000,
  ...more,
});

async function proxyTo(upstream: string): Promise<Proxy> {
  const proxy = await startProxy(upstream);
  opened.push(proxy);
  return proxy;
}

async function open(address: string, more: Partial<ConnectionOptions> = {}): Promise<Connected> {
  const connected = await openTarget(options(address, more));
  opened.push(connected);
  return connected;
}

function terminal() {
  const printed = {out: '', err: ''};
  return {
    printed,
    out: (text: string) => (printed.out += text),
    err: (text: string) => (printed.err += text),
  };
}

const plainRequest = {emitDefaults: false, protoNames: false, verbose: false, json: false};

/** Resolves when `happened` is called, or fails after `timeoutMs`. */
function within(timeoutMs: number, what: string): {promise: Promise<void>; happened: () => void} {
  let happened!: () => void;
  const promise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
    happened = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return {promise, happened};
}

describe('one channel per target', () => {
  it('tacos call through reflection (v1 refused, then v1alpha) and the call itself open exactly one TCP connection', async () => {
    const proxy = await proxyTo(allTypes.address);
    const screen = terminal();
    const code = await runCall(
      {...options(proxy.address, {refresh: true}), ...plainRequest, method: 'AllTypes.Unary', data: '{"title":"one"}'},
      {...screen, readStdin: async () => '', interactive: false},
      () => Promise.reject(new Error('no prompts in this test')),
    );
    expect(screen.printed.err).toBe('');
    expect(code).toBe(0);
    expect(jsonObjects(screen.printed.out)[0].got).toEqual({title: 'one'});
    expect(proxy.connections).toBe(1);
  });

  it('several calls on one Connected (reflection, then three calls of every kind) share its one connection', async () => {
    const proxy = await proxyTo(allTypes.address);
    const connected = await open(proxy.address, {refresh: true});
    for (const name of ['AllTypes.Unary', 'AllTypes.ServerStream', 'AllTypes.Bidi']) {
      const screen = terminal();
      const method = findMethod(connected.schema, name);
      expect(await callMethod(connected, {...plainRequest, method, requests: [{title: name}]}, screen)).toBe(0);
      expect(screen.printed.out).toContain(`"title": "${name}"`);
    }
    expect(proxy.connections).toBe(1);
  });
});

describe('a call of the connection', () => {
  it('sends the headers of the call besides the target-wide ones (-H, --token)', async () => {
    const connected = await open(allTypes.address, {headers: ['x-everywhere: yes'], token: 'abc'});
    const method = findMethod(connected.schema, 'AllTypes.Unary');
    const code = await callMethod(
      connected,
      {...plainRequest, method, requests: [], headers: [['x-once', 'this call']]},
      terminal(),
    );
    expect(code).toBe(0);
    expect(allTypes.calls.at(-1)!.metadata).toMatchObject({
      'x-everywhere': 'yes',
      authorization: 'Bearer abc',
      'x-once': 'this call',
    });
    await callMethod(connected, {...plainRequest, method, requests: []}, terminal());
    expect(allTypes.calls.at(-1)!.metadata).not.toHaveProperty('x-once');
  });

  it('aborting its signal stops a stream: "Cancelled." on stderr, no ERROR block, exit code 65; the next call works', async () => {
    const connected = await open(allTypes.address, {headers: ['x-gap-ms: 1000']});
    const method = findMethod(connected.schema, 'AllTypes.ServerStream');
    const abort = new AbortController();
    const screen = terminal();
    const firstMessage = within(5000, 'the first message');
    const running = callMethod(
      connected,
      {...plainRequest, method, requests: [{}], signal: abort.signal},
      {
        out: (text) => {
          screen.out(text);
          firstMessage.happened();
        },
        err: screen.err,
      },
    );
    await firstMessage.promise;
    abort.abort();
    expect(await running).toBe(65);
    expect(screen.printed.err).toBe('Cancelled.\n');
    expect(jsonObjects(screen.printed.out)).toHaveLength(1);

    const after = terminal();
    const unary = findMethod(connected.schema, 'AllTypes.Unary');
    expect(await callMethod(connected, {...plainRequest, method: unary, requests: [{title: 'after'}]}, after)).toBe(0);
    expect(jsonObjects(after.printed.out)[0].got).toEqual({title: 'after'});
  });

  it('a signal aborted before the call does not reach the server', async () => {
    const connected = await open(allTypes.address);
    const method = findMethod(connected.schema, 'AllTypes.Unary');
    const calls = allTypes.calls.length;
    const screen = terminal();
    const code = await callMethod(
      connected,
      {...plainRequest, method, requests: [], signal: AbortSignal.abort()},
      screen,
    );
    expect(code).toBe(65);
    expect(screen.printed.err).toBe('Cancelled.\n');
    expect(allTypes.calls.length).toBe(calls);
  });
});

describe('reload and reconnect', () => {
  it('reload() after the server was replaced by one with other services: the new schema, over the same address, and what changed', async () => {
    const proxy = await proxyTo(allTypes.address);
    const connected = await open(proxy.address, {refresh: true});
    expect(connected.schema.services.map((service) => service.typeName)).toEqual([
      'tacostest.v1.AllTypes',
      'tacostest.v1.Mirror',
    ]);
    const unchanged = await connected.reload();
    expect(unchanged).toEqual({changed: false, summary: 'The schema did not change (2 services).'});

    await proxy.down();
    await proxy.up(defective.address);
    const reloaded = await connected.reload();
    expect(reloaded.changed).toBe(true);
    expect(reloaded.summary.split('\n')).toEqual(
      expect.arrayContaining([
        'The schema changed:',
        '  added service tacostest.defect.Stamper',
        '  added message tacostest.defect.StampRequest',
        '  removed service tacostest.v1.AllTypes',
        '  removed service tacostest.v1.Mirror',
        '  removed message tacostest.v1.AllTypesMessage',
      ]),
    );
    expect(connected.schema.services.map((service) => service.typeName)).toEqual(['tacostest.defect.Stamper']);
    expect(connected.schema.registry.getMessage('tacostest.defect.StampRequest')).toBeDefined();

    // The reloaded schema was cached: a new connection to the same address reads it without asking.
    const next = await open(proxy.address);
    expect(next.schema.cachedAt).toBeDefined();
    expect(next.schema.services.map((service) => service.typeName)).toEqual(['tacostest.defect.Stamper']);

    const screen = terminal();
    const stamp = findMethod(connected.schema, 'Stamp');
    expect(await callMethod(connected, {...plainRequest, method: stamp, requests: [{name: 'new'}]}, screen)).toBe(0);
    expect(jsonObjects(screen.printed.out)[0]).toEqual({greeting: 'hello new'});
  });

  it('onReconnect() tells each listener once the server is back after a restart on the same port; unsubscribed ones are not told', async () => {
    const proxy = await proxyTo(allTypes.address);
    const connected = await open(proxy.address, {refresh: true});
    const reconnected = within(15_000, 'the reconnection');
    let told = 0;
    let toldUnsubscribed = 0;
    connected.onReconnect(() => {
      told++;
      reconnected.happened();
    });
    const unsubscribe = connected.onReconnect(() => toldUnsubscribed++);
    unsubscribe();

    await proxy.down();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await proxy.up(allTypes.address);
    await reconnected.promise;
    expect(told).toBe(1);
    expect(toldUnsubscribed).toBe(0);
    expect(proxy.connections).toBe(2);

    const screen = terminal();
    const method = findMethod(connected.schema, 'AllTypes.Unary');
    expect(await callMethod(connected, {...plainRequest, method, requests: []}, screen)).toBe(0);
    expect(proxy.connections, 'the call used the reconnected channel').toBe(2);
  });

  it('while the server is down a call says nothing answers; once it is back on the same port, the next call works', async () => {
    const proxy = await proxyTo(allTypes.address);
    const connected = await open(proxy.address, {refresh: true});
    const method = findMethod(connected.schema, 'AllTypes.Unary');
    expect(await callMethod(connected, {...plainRequest, method, requests: []}, terminal())).toBe(0);

    await proxy.down();
    // The first call may still start on the connection being dropped (UNAVAILABLE); after it, the channel knows.
    await callMethod(connected, {...plainRequest, method, requests: []}, terminal()).catch(() => undefined);
    await expect(callMethod(connected, {...plainRequest, method, requests: []}, terminal())).rejects.toThrow(
      `Nothing answers at ${proxy.address}.`,
    );

    await proxy.up(allTypes.address);
    const screen = terminal();
    expect(await callMethod(connected, {...plainRequest, method, requests: [{title: 'back'}]}, screen)).toBe(0);
    expect(jsonObjects(screen.printed.out)[0].got).toEqual({title: 'back'});
  });

  it('close() is safe twice and stops the watching', async () => {
    const connected = await open(allTypes.address);
    connected.onReconnect(() => undefined);
    connected.close();
    connected.close();
  });
});
