/**
 * `tacos call` (service level) against the servers a user meets besides ours: nothing listening,
 * a TLS server, a server without reflection (--proto), and a server whose reflection is the
 * defective kind (@grpc/reflection over proto-loader, grpc-node#2595).
 */
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TacosError} from '../../src/services/errors.js';
import {runCall, type CallRunOptions, type Prompter} from '../../src/services/grpc-client/run-call.js';
import {
  ALL_TYPES_PROTO,
  FIXTURES,
  jsonObjects,
  selfSignedCert,
  startAllTypesServer,
  startDefectiveServer,
  type TestServer,
} from '../helpers/call-servers.js';
import {freePort} from '../helpers/redis.js';

/**
 * The smallest schema of tacostest.v1.AllTypes/Unary (scalar fields only), for connection tests with
 * --proto. Written at run time: in test/grpc/fixtures it would clash with call_all_types.proto in buf's module.
 */
const TINY_SOURCE =
  'syntax = "proto3";\npackage tacostest.v1;\nservice AllTypes {\n  rpc Unary(Tiny) returns (Tiny);\n}\nmessage Tiny {\n  string title = 50;\n}\n';
let TINY_PROTO: string;
const servers: TestServer[] = [];
let dir: string;
let cert: {key: string; cert: string} | {skip: string};
let tlsServer: TestServer | undefined;
let bare: TestServer;
let defective: TestServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-call-connect-'));
  process.env.TACOS_STATE_DIR = path.join(dir, 'state');
  TINY_PROTO = path.join(dir, 'call_tiny.proto');
  await writeFile(TINY_PROTO, TINY_SOURCE);
  cert = await selfSignedCert(dir);
  if ('skip' in cert) console.warn(`TLS tests skipped: ${cert.skip}`);
  else {
    tlsServer = await startAllTypesServer({
      reflection: 'v1alpha',
      tls: {key: await readFile(cert.key), cert: await readFile(cert.cert)},
    });
    servers.push(tlsServer);
  }
  bare = await startAllTypesServer({reflection: 'none'});
  servers.push(bare);
  defective = await startDefectiveServer();
  servers.push(defective);
});

afterAll(async () => {
  for (const server of servers) {
    await server.stop();
    await server.stop();
  }
  delete process.env.TACOS_STATE_DIR;
  await rm(dir, {recursive: true, force: true});
});

const noPrompts: Prompter = {
  method: () => Promise.reject(new Error('no prompts in this test')),
  request: () => Promise.reject(new Error('no prompts in this test')),
};

async function call(
  options: Partial<CallRunOptions> & {address: string},
): Promise<{code: number; out: string; err: string; ms: number}> {
  let out = '';
  let err = '';
  const started = Date.now();
  try {
    const code = await runCall(
      {
        headers: [],
        refresh: true,
        connectTimeoutMs: 1500,
        emitDefaults: false,
        protoNames: false,
        verbose: false,
        json: false,
        ...options,
      },
      {out: (text) => (out += text), err: (text) => (err += text), readStdin: async () => '', interactive: false},
      async () => noPrompts,
    );
    return {code, out, err, ms: Date.now() - started};
  } catch (error) {
    if (!(error instanceof TacosError)) throw error;
    return {code: error.exitCode, out, err: `${error.message}\nHint: ${error.hint ?? ''}`, ms: Date.now() - started};
  }
}

describe('connection failures fail fast and say what is wrong', () => {
  it('nothing listening: "Nothing answers" with a hint, exit 1, well within the connect timeout', async () => {
    const port = await freePort();
    const result = await call({
      address: `127.0.0.1:${port}`,
      method: 'AllTypes.Unary',
      data: '{}',
      connectTimeoutMs: 5000,
    });
    expect(result.code).toBe(1);
    expect(result.err).toContain(`Nothing answers at 127.0.0.1:${port}`);
    expect(result.err).toMatch(/tacos up/);
    expect(result.ms).toBeLessThan(2000);
  });

  it('nothing listening, with --proto (no reflection needed): the same message', async () => {
    const port = await freePort();
    const result = await call({
      address: `127.0.0.1:${port}`,
      method: 'AllTypes.Unary',
      data: '{}',
      protoFiles: [TINY_PROTO],
      connectTimeoutMs: 5000,
    });
    expect(result.code).toBe(1);
    expect(result.err).toContain(`Nothing answers at 127.0.0.1:${port}`);
    expect(result.ms).toBeLessThan(2000);
  });

  it('plaintext against a TLS server, with --proto (no reflection needed): fails fast saying it probably speaks TLS', async (context) => {
    if (!tlsServer) return context.skip();
    const result = await call({
      address: tlsServer.address,
      method: 'AllTypes.Unary',
      data: '{}',
      protoFiles: [TINY_PROTO],
      connectTimeoutMs: 5000,
    });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/probably speaks TLS/);
    expect(result.ms).toBeLessThan(2000);
  });

  it('plaintext against a TLS server: fails fast saying it probably speaks TLS', async (context) => {
    if (!tlsServer) return context.skip();
    const result = await call({
      address: tlsServer.address,
      method: 'AllTypes.Unary',
      data: '{}',
      connectTimeoutMs: 5000,
    });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/probably speaks TLS/);
    expect(result.err).toMatch(/--tls/);
    expect(result.ms).toBeLessThan(2000);
  });

  it('plaintext against an HTTP/1.1 server (a REST port): fails fast saying so, and where gRPC is', async () => {
    const rest = createServer((_request, response) => response.end('{}'));
    await new Promise<void>((resolve) => rest.listen(0, '127.0.0.1', resolve));
    try {
      const result = await call({
        address: `127.0.0.1:${(rest.address() as AddressInfo).port}`,
        method: 'AllTypes.Unary',
        data: '{}',
        connectTimeoutMs: 5000,
      });
      expect(result.code).toBe(1);
      expect(result.err).toMatch(/answers HTTP\/1\.1, not gRPC/);
      expect(result.err).toMatch(/GRPC_PORT/);
      expect(result.err).not.toMatch(/--tls/);
    } finally {
      rest.closeAllConnections();
      await new Promise((resolve) => rest.close(resolve));
    }
  });

  it('TLS against a plaintext server: fails fast saying it probably speaks plaintext', async () => {
    const result = await call({
      address: bare.address,
      tls: true,
      insecure: true,
      method: 'AllTypes.Unary',
      data: '{}',
      protoFiles: [TINY_PROTO],
      connectTimeoutMs: 5000,
    });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/probably speaks plaintext/);
    expect(result.ms).toBeLessThan(2000);
  });
});

describe('TLS', () => {
  it('--tls --insecure works against a self-signed certificate (reflection and the call)', async (context) => {
    if (!tlsServer) return context.skip();
    const result = await call({
      address: tlsServer.address,
      tls: true,
      insecure: true,
      method: 'AllTypes.Unary',
      data: '{"title":"secure"}',
    });
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)[0].got).toEqual({title: 'secure'});
  });

  it('--tls --cacert --servername localhost verifies the certificate and works', async (context) => {
    if (!tlsServer || 'skip' in cert) return context.skip();
    const result = await call({
      address: tlsServer.address,
      tls: true,
      cacert: cert.cert,
      servername: 'localhost',
      method: 'AllTypes.Unary',
      data: '{"title":"verified"}',
    });
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)[0].got).toEqual({title: 'verified'});
  });

  it('--tls without --insecure or the CA refuses the self-signed certificate quickly, and says so', async (context) => {
    if (!tlsServer) return context.skip();
    for (const schema of [{protoFiles: [TINY_PROTO]}, {}]) {
      const result = await call({
        address: tlsServer.address,
        tls: true,
        method: 'AllTypes.Unary',
        data: '{}',
        connectTimeoutMs: 5000,
        ...schema,
      });
      expect(result.code).toBe(1);
      expect(result.ms).toBeLessThan(2000);
      expect(result.err, 'the certificate is the problem, not the protocol').toMatch(/certificate/i);
      expect(result.err).not.toMatch(/speaks plaintext/);
      expect(result.err).toMatch(/--insecure|--cacert/);
    }
  });
});

describe('a unix socket', () => {
  it('unix:PATH is plaintext by default and works with reflection', async () => {
    const socket = await startAllTypesServer({reflection: 'v1alpha', unixSocket: path.join(dir, 'grpc.sock')});
    servers.push(socket);
    const result = await call({address: socket.address, method: 'AllTypes.Unary', data: '{"title":"unix"}'});
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)[0].got).toEqual({title: 'unix'});
  });

  it('a unix socket nobody listens on: "Nothing answers", fast', async () => {
    const result = await call({
      address: `unix:${path.join(dir, 'nobody.sock')}`,
      method: 'AllTypes.Unary',
      data: '{}',
      protoFiles: [TINY_PROTO],
    });
    expect(result.code).toBe(1);
    expect(result.err).toContain('Nothing answers');
    expect(result.ms).toBeLessThan(2000);
  });
});

describe('--proto FILE -I DIR against a server without reflection', () => {
  it('without --proto: says the server has no reflection and suggests --proto', async () => {
    const result = await call({address: bare.address, method: 'AllTypes.Unary', data: '{}'});
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/reflection/i);
    expect(result.err).toContain('--proto');
  });

  it('with --proto and -I: every streaming kind works, 64-bit integers intact', async () => {
    const proto = {address: bare.address, protoFiles: [ALL_TYPES_PROTO], importDirs: [FIXTURES]};
    const unary = await call({
      ...proto,
      method: 'AllTypes.Unary',
      data: '{"f_int64":"9007199254740993","at":"2026-01-02T03:04:05Z","counts":{"a":1}}',
    });
    expect(unary.err).toBe('');
    expect(unary.code).toBe(0);
    expect(jsonObjects(unary.out)[0].got).toEqual({
      fInt64: '9007199254740993',
      at: '2026-01-02T03:04:05Z',
      counts: {a: 1},
    });
    expect(bare.calls.at(-1)!.requests[0].fInt64).toBe(9007199254740993n);

    const stream = await call({...proto, method: 'tacostest.v1.AllTypes/ServerStream', data: '{}'});
    expect(jsonObjects(stream.out).map((message) => message.index)).toEqual([1, 2, 3]);
    const client = await call({...proto, method: 'ClientStream', data: '{"title":"a"}{"title":"b"}'});
    expect(jsonObjects(client.out)[0].got).toEqual([{title: 'a'}, {title: 'b'}]);
    const bidi = await call({...proto, method: 'Bidi', data: '{"title":"a"}{"title":"b"}'});
    expect(jsonObjects(bidi.out).map((message) => message.got.title)).toEqual(['a', 'b']);
  });

  it('a --proto that does not exist or does not parse is a usage error', async () => {
    const missing = await call({
      address: bare.address,
      protoFiles: [path.join(dir, 'nope.proto')],
      method: 'AllTypes.Unary',
      data: '{}',
    });
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('nope.proto');
    const broken = path.join(dir, 'broken.proto');
    await writeFile(broken, 'syntax = "proto3";\nmessage Broken { string name = }\n');
    const unparsable = await call({address: bare.address, protoFiles: [broken], method: 'Broken', data: '{}'});
    expect(unparsable.code).toBe(2);
    expect(unparsable.err).toContain('broken.proto');
    const missingImport = path.join(dir, 'importer.proto');
    await writeFile(
      missingImport,
      'syntax = "proto3";\nimport "nowhere/missing.proto";\nmessage M { string name = 1; }\n',
    );
    const unresolved = await call({
      address: bare.address,
      protoFiles: [missingImport],
      importDirs: [dir],
      method: 'M',
      data: '{}',
    });
    expect(unresolved.code).toBe(2);
    expect(unresolved.err).toContain('missing.proto');
  });
});

describe('a server with defective reflection (@grpc/reflection over proto-loader, grpc-node#2595)', () => {
  it('tacos call still works: map fields and Timestamp across the imported file', async () => {
    const result = await call({
      address: defective.address,
      method: 'tacostest.defect.Stamper.Stamp',
      data: '{"name":"tacos","labels":{"team":"gateway","env":"dev"},"at":"2026-01-02T03:04:05.678Z"}',
    });
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)).toEqual([
      {greeting: 'hello tacos', labels: {team: 'gateway', env: 'dev'}, at: '2026-01-02T03:04:05.678Z'},
    ]);
    expect(defective.calls.at(-1)!.requests[0]).toMatchObject({name: 'tacos', labels: {team: 'gateway', env: 'dev'}});
  });

  it('a bare method name and a second (cached) call work too', async () => {
    const first = await call({address: defective.address, method: 'Stamp', data: '{"name":"a"}'});
    expect(first.code).toBe(0);
    const cached = await call({
      address: defective.address,
      method: 'Stamper/Stamp',
      data: '{"name":"b"}',
      refresh: false,
    });
    expect(cached.code).toBe(0);
    expect(jsonObjects(cached.out)[0]).toEqual({greeting: 'hello b'});
  });
});
