/**
 * `tacos repl` at the service level (runRepl with piped input, output captured) against the
 * AllTypes server: selection by --package/--service, calls with -d and --repeat, headers reaching
 * the server, a stream cancelled by Ctrl-C (SIGINT) with the REPL going on, errors that leave it
 * running, show/desc, export, history kept for the next run, and a server replaced behind the same
 * address (the schema reloaded on reconnect). The terminal side (prompt, Tab,
 * Up arrow, field prompts) is the pty test's (test/e2e/repl.test.ts).
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {createConnection, createServer, type Server, type Socket} from 'node:net';
import {PassThrough, Writable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runRepl, type ReplOptions} from '../../src/services/repl/repl.js';
import {startAllTypesServer, startDefectiveServer, type TestServer} from '../helpers/call-servers.js';

let server: TestServer | undefined;
let stateDir: string;
const srv = () => server as TestServer;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'tacos-repl-state-'));
  process.env.TACOS_STATE_DIR = stateDir;
  server = await startAllTypesServer({reflection: 'v1alpha'});
});

afterAll(async () => {
  await server?.stop();
  delete process.env.TACOS_STATE_DIR;
  await rm(stateDir, {recursive: true, force: true});
});

/** A REPL run with lines sent one at a time; stdout and stderr in one transcript, in order. */
function startRepl(options: Partial<ReplOptions> = {}) {
  const input = new PassThrough();
  let transcript = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      transcript += chunk.toString();
      callback();
    },
  });
  const done = runRepl(
    {connection: {address: srv().address, headers: [], refresh: false, connectTimeoutMs: 3000}, ...options},
    {
      input,
      output: sink,
      error: sink,
      prompter: () => Promise.reject(new Error('no prompts off a terminal')),
    },
  );
  return {
    send: (line: string) => input.write(`${line}\n`),
    end: () => input.end(),
    text: () => transcript,
    /** Waits (at most 10 s) until the transcript matches. */
    async waitFor(pattern: RegExp): Promise<void> {
      for (let i = 0; i < 200 && !pattern.test(transcript); i++) await new Promise((r) => setTimeout(r, 50));
      expect(transcript).toMatch(pattern);
    },
    done,
  };
}

describe('tacos repl', () => {
  it('selects with --package/--service, calls with -d and --repeat, sends the headers set, goes on after errors', async () => {
    const repl = startRepl({package: 'tacostest.v1', service: 'AllTypes'});
    const before = srv().calls.length;
    repl.send('header x-env=dev');
    repl.send('call Unary -d {"title": "a b"}');
    repl.send('call Unary --repeat');
    repl.send('call Nope');
    repl.send('call Unary -d {"no_such_field": 1}');
    repl.send('call Fail -d {}');
    repl.send('show rpc');
    repl.send('header -r x-env');
    repl.send('call Unary -d {"title": "plain"}');
    repl.end();
    expect(await repl.done).toBe(0);
    const calls = srv().calls.slice(before);
    expect(calls.map((call) => [call.method, call.requests[0]?.title, call.metadata['x-env']])).toEqual([
      ['AllTypes/Unary', 'a b', 'dev'],
      ['AllTypes/Unary', 'a b', 'dev'],
      ['AllTypes/Fail', '', 'dev'],
      ['AllTypes/Unary', 'plain', undefined],
    ]);
    const text = repl.text();
    expect(text).toContain('Error: No method "Nope" on this server.');
    expect(text).toContain('Error: The request is not a valid tacostest.v1.AllTypesMessage');
    expect(text).toMatch(/ERROR:\n {2}Code: InvalidArgument \(3\)/);
    expect(text).toMatch(/\| Unary +\| false +\| false +\| AllTypesMessage +\| Echo +\|/);
  });

  it('Ctrl-C cancels the stream in flight and the REPL goes on', async () => {
    const repl = startRepl({package: 'tacostest.v1', service: 'AllTypes'});
    repl.send('header x-gap-ms=1000');
    repl.send('call ServerStream -d {"title": "slow"}');
    await repl.waitFor(/"index": 1/);
    process.emit('SIGINT');
    await repl.waitFor(/Cancelled\./);
    repl.send('show package');
    await repl.waitFor(/\| tacostest\.v1 \|/);
    repl.end();
    expect(await repl.done).toBe(0);
    expect(repl.text()).not.toContain('"index": 3');
  });

  it('shows, describes, selects by name, and says so when a name is unknown', async () => {
    const repl = startRepl();
    repl.send('show service');
    repl.send('service Mirror');
    repl.send('show rpc');
    repl.send('desc Color');
    repl.send('package nope');
    repl.send('show header');
    repl.end();
    expect(await repl.done).toBe(0);
    const text = repl.text();
    expect(text).toMatch(/\| SERVICE +\| RPC +\| REQUEST TYPE +\| RESPONSE TYPE \|/);
    expect(text).toMatch(/\| AllTypes +\| ServerStream +\| AllTypesMessage +\| Echo +\|/);
    expect(text).toMatch(/\| RPC +\| REQUEST STREAM/);
    expect(text).toContain('tacostest.v1.Color is an enum:');
    expect(text).toContain('Error: No package "nope" on this server.\nHint: Did you mean: tacostest.v1?');
  });

  it('exports the last call, and the next run has the history and can --repeat it', async () => {
    const first = startRepl({
      connection: {
        address: srv().address,
        headers: ['x-team: tacos'],
        token: 'sekret',
        refresh: false,
        connectTimeoutMs: 3000,
      },
    });
    first.send('call AllTypes.Unary -d {"title": "kept"}');
    first.send('export');
    first.send('export --grpcurl');
    first.end();
    expect(await first.done).toBe(0);
    const text = first.text();
    // The server echoes the token it got; the command lines never hold it.
    const commandLines = text.split('\n').filter((line) => /^(tacos|grpcurl) /.test(line));
    expect(commandLines).toHaveLength(2);
    expect(commandLines.join('\n')).not.toContain('sekret');
    expect(text).toContain(
      `tacos call --addr ${srv().address} --plaintext -H 'x-team: tacos' -H "authorization: Bearer $TACOS_TOKEN" tacostest.v1.AllTypes/Unary -d '{"title":"kept"}'`,
    );
    expect(text).toContain(
      `grpcurl -plaintext -H 'x-team: tacos' -H "authorization: Bearer $TACOS_TOKEN" -d '{"title":"kept"}' ${srv().address} tacostest.v1.AllTypes/Unary`,
    );
    expect(text).toContain('Secrets are not printed: set $TACOS_TOKEN before running it.');

    const before = srv().calls.length;
    const next = startRepl({package: 'tacostest.v1', service: 'AllTypes'});
    next.send('history');
    next.send('call Unary --repeat');
    next.end();
    expect(await next.done).toBe(0);
    expect(next.text()).toMatch(/\d+ {2}tacostest\.v1\.AllTypes\/Unary \{"title":"kept"\}/);
    expect(
      srv()
        .calls.slice(before)
        .map((call) => call.requests[0]?.title),
    ).toEqual(['kept']);
    expect(await readFile(path.join(stateDir, 'repl', 'requests.jsonl'), 'utf8')).toContain('"title":"kept"');
  });

  it('writes a request skeleton with --example, refuses to overwrite it without --force, and calls with it', async () => {
    const file = path.join(stateDir, 'unary.json');
    const repl = startRepl({package: 'tacostest.v1', service: 'AllTypes'});
    repl.send(`call Unary --example ${file}`);
    repl.send(`call Unary --example ${file}`);
    repl.send(`call Unary -d @${file}`);
    repl.end();
    expect(await repl.done).toBe(0);
    const text = repl.text();
    expect(text).toContain(`Wrote the request of tacostest.v1.AllTypes/Unary to ${file}.`);
    expect(text).toContain(`Error: ${file} exists.`);
    // The skeleton went out as it was written (the echo of what the server got).
    expect(text).toContain('"choiceText": ""');
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({title: '', color: 'COLOR_UNSPECIFIED'});
  });
});

/** A TCP forwarder on `port` (0: any) to `upstream`; close() drops every connection through it. */
async function forward(port: number, upstream: TestServer): Promise<{port: number; close(): Promise<void>}> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const backend = createConnection({host: '127.0.0.1', port: upstream.port});
    for (const socket of [client, backend]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(backend).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as {port: number}).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('tacos repl when the server is replaced', () => {
  it('reloads the schema when the connection comes back and says what changed; the selection follows', async () => {
    const other = await startDefectiveServer();
    let front = await forward(0, srv());
    const port = front.port;
    try {
      const repl = startRepl({
        connection: {address: `127.0.0.1:${port}`, headers: [], refresh: true, connectTimeoutMs: 3000},
        service: 'AllTypes',
      });
      repl.send('show rpc');
      await repl.waitFor(/\| ServerStream /);
      await front.close();
      front = await forward(port, other);
      await repl.waitFor(
        /The schema changed: added service tacostest\.defect\.Stamper, removed service tacostest\.v1\.\w+/,
      );
      repl.send('show rpc');
      repl.send('call Stamp -d {"name": "again"}');
      repl.end();
      expect(await repl.done).toBe(0);
      // The only package left is selected, with its only service.
      expect(repl.text()).toMatch(/\| Stamp +\| false/);
      expect(other.calls.map((call) => call.requests[0]?.name)).toEqual(['again']);
    } finally {
      await front.close();
      await other.stop();
    }
  });
});
