/**
 * `tacos call`, `list` and `describe` as a user runs them (node bin/run.js), against servers this
 * test starts on loopback: the AllTypes server with reflection v1alpha only, one with TLS, one
 * without reflection, one with defective reflection (@grpc/reflection over proto-loader).
 */
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli, type CliResult} from '../helpers/cli.js';
import {
  ALL_TYPES_PROTO,
  FIXTURES,
  jsonObjects,
  selfSignedCert,
  startAllTypesServer,
  startDefectiveServer,
  UNKNOWN_DETAIL_BYTES,
  type TestServer,
} from '../helpers/call-servers.js';
import {freePort} from '../helpers/redis.js';

let project: string;
let server: TestServer;
let cert: {key: string; cert: string} | {skip: string};
const servers: TestServer[] = [];
const srv = () => server;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-call-e2e-'));
  server = await startAllTypesServer({reflection: 'v1alpha'});
  servers.push(server);
  cert = await selfSignedCert(project);
  if ('skip' in cert) console.warn(`TLS tests skipped: ${cert.skip}`);
});

afterAll(async () => {
  for (const one of servers) {
    await one.stop();
    await one.stop();
  }
  await rm(project, {recursive: true, force: true});
});

/** `tacos ARGS` in the project dir (its .tacos/cache holds the schema cache). */
function tacos(args: string[], options: {input?: string; timeoutMs?: number} = {}): Promise<CliResult> {
  // The state dir is <cwd>/.tacos anyway; named here so a TACOS_STATE_DIR of the caller's environment cannot move it.
  return runCli(args, {
    cwd: project,
    timeoutMs: options.timeoutMs ?? 20_000,
    input: options.input,
    env: {TACOS_STATE_DIR: path.join(project, '.tacos')},
  });
}

const BIG = '9007199254740993';

describe('tacos call against a server with reflection v1alpha only', () => {
  it('falls back to v1alpha, calls the method and prints proto3 JSON; the schema is cached under .tacos/cache/reflection', async () => {
    const result = await tacos([
      'call',
      '--addr',
      srv().address,
      'tacostest.v1.AllTypes.Unary',
      '-d',
      `{"title":"hi","f_int64":"${BIG}","color":"COLOR_RED","at":"2026-01-02T03:04:05Z","took":"90s"}`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [echo] = jsonObjects(result.stdout);
    expect(echo.got).toEqual({title: 'hi', fInt64: BIG, color: 'COLOR_RED', at: '2026-01-02T03:04:05Z', took: '90s'});
    expect(srv().calls.at(-1)!.requests[0].fInt64).toBe(9007199254740993n);
    expect(await readdir(path.join(project, '.tacos', 'cache', 'reflection'))).not.toHaveLength(0);
  });

  it('--proto-names prints the .proto field names', async () => {
    const result = await tacos([
      'call',
      '--addr',
      srv().address,
      'AllTypes.Unary',
      '-d',
      `{"f_int64":"${BIG}","repeated_nested":[{"name":"a"}]}`,
      '--proto-names',
    ]);
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)[0]).toMatchObject({
      got: {f_int64: BIG, repeated_nested: [{name: 'a'}]},
      received_metadata: expect.any(Object),
    });
  });

  it('--emit-defaults prints zero values', async () => {
    const result = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{}', '--emit-defaults']);
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)[0].got).toMatchObject({
      fInt64: '0',
      fBool: false,
      color: 'COLOR_UNSPECIFIED',
      repeatedString: [],
      counts: {},
    });
  });

  it('-d @file, -d @- (stdin), and no -d off a terminal (an empty request)', async () => {
    const file = path.join(project, 'request.json');
    await writeFile(file, JSON.stringify({title: 'file', by_id: {[BIG]: {name: 'big'}}}));
    const fromFile = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', `@${file}`]);
    expect(fromFile.code).toBe(0);
    expect(jsonObjects(fromFile.stdout)[0].got).toEqual({title: 'file', byId: {[BIG]: {name: 'big'}}});

    const dash = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '@-'], {
      input: '{"title":"stdin"}',
    });
    expect(dash.code).toBe(0);
    expect(jsonObjects(dash.stdout)[0].got).toEqual({title: 'stdin'});

    // Without -d off a terminal: an empty request, as grpcurl sends; an open stdin is never waited for.
    const piped = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary'], {input: '{"title":"piped"}\n'});
    expect(piped.code).toBe(0);
    expect(jsonObjects(piped.stdout)[0].got).toEqual({});
  });

  it('streams: server streaming prints three messages; client and bidi streaming take several JSON objects from stdin', async () => {
    const server = await tacos(['call', '--addr', srv().address, 'AllTypes.ServerStream', '-d', '{"title":"s"}']);
    expect(server.code).toBe(0);
    expect(jsonObjects(server.stdout).map((message) => message.index)).toEqual([1, 2, 3]);

    const client = await tacos(['call', '--addr', srv().address, 'AllTypes.ClientStream', '-d', '@-'], {
      input: '{"title":"a"}\n{"title":"b"}\n{"title":"c"}\n',
    });
    expect(client.code).toBe(0);
    expect(jsonObjects(client.stdout)[0].got).toEqual([{title: 'a'}, {title: 'b'}, {title: 'c'}]);

    const bidi = await tacos([
      'call',
      '--addr',
      srv().address,
      'tacostest.v1.AllTypes/Bidi',
      '-d',
      '{"title":"x"} {"title":"y"}',
    ]);
    expect(bidi.code).toBe(0);
    expect(jsonObjects(bidi.stdout).map((message) => [message.index, message.got.title])).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
  });

  it('-H and --token reach the server, and -H reaches reflection too', async () => {
    const before = srv().reflectionCalls.length;
    const result = await tacos([
      'call',
      '--addr',
      srv().address,
      'AllTypes.Unary',
      '-d',
      '{}',
      '-H',
      'x-team: tacos',
      '-H',
      'x-other:1',
      '--token',
      'tok-123',
      '--refresh',
    ]);
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)[0].receivedMetadata).toMatchObject({
      'x-team': 'tacos',
      'x-other': '1',
      authorization: 'Bearer tok-123',
    });
    const reflection = srv().reflectionCalls.slice(before);
    expect(reflection.length).toBeGreaterThan(0);
    expect(reflection.every((metadata) => metadata['x-team'] === 'tacos')).toBe(true);
  });

  it('the method may come after repeatable flags (-H, --reflect-header), as grpcurl users write it', async () => {
    const result = await tacos([
      'call',
      '--addr',
      srv().address,
      '-H',
      'x-team: tacos',
      '--reflect-header',
      'x-reflect: r',
      'AllTypes.Unary',
      '-d',
      '{}',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)[0].receivedMetadata).toMatchObject({'x-team': 'tacos'});
    expect(srv().calls.at(-1)!.method).toBe('AllTypes/Unary');
  });

  it('--reflect-header goes to reflection instead of -H', async () => {
    const before = srv().reflectionCalls.length;
    const result = await tacos([
      'call',
      '--addr',
      srv().address,
      'AllTypes.Unary',
      '-d',
      '{}',
      '-H',
      'x-call: c',
      '--reflect-header',
      'x-reflect: r',
      '--refresh',
    ]);
    expect(result.code).toBe(0);
    expect(srv().calls.at(-1)!.metadata).toMatchObject({'x-call': 'c'});
    expect(srv().calls.at(-1)!.metadata).not.toHaveProperty('x-reflect');
    const reflection = srv().reflectionCalls.slice(before);
    expect(reflection.length).toBeGreaterThan(0);
    expect(reflection.every((metadata) => metadata['x-reflect'] === 'r' && !('x-call' in metadata))).toBe(true);
  });

  it('-v prints response headers and trailers; --json prints one object with status, headers, messages, trailers', async () => {
    const verbose = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{}', '-v']);
    expect(verbose.code).toBe(0);
    expect(verbose.stdout).toMatch(
      /Response headers:[\s\S]*x-echo-header: hello[\s\S]*"got"[\s\S]*Response trailers:[\s\S]*x-echo-trailer: done/,
    );

    const json = await tacos([
      'call',
      '--addr',
      srv().address,
      'AllTypes.ServerStream',
      '-d',
      '{"title":"j"}',
      '--json',
    ]);
    expect(json.code).toBe(0);
    const printed = JSON.parse(json.stdout);
    expect(printed.status.code).toBe(0);
    expect(printed.headers['x-echo-header']).toEqual(['hello']);
    expect(printed.messages).toHaveLength(3);
    expect(printed.trailers['x-echo-trailer']).toEqual(['done']);
  });

  it('a gRPC error: ERROR block on stderr with code, message and decoded details; exit 64 + code', async () => {
    const result = await tacos(['call', '--addr', srv().address, 'AllTypes.Fail', '-d', '{}']);
    expect(result.code).toBe(67);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Code: (InvalidArgument|INVALID_ARGUMENT) \(3\)/);
    expect(result.stderr).toContain('Message: title must not be empty');
    expect(result.stderr).toContain('google.rpc.BadRequest');
    expect(result.stderr).toMatch(/"field": "title"/);
    expect(result.stderr).toMatch(/"retryDelay": "1\.500s"/);
    expect(result.stderr).toContain(UNKNOWN_DETAIL_BYTES.toString('base64'));

    const json = await tacos(['call', '--addr', srv().address, 'AllTypes.Fail', '-d', '{}', '--json']);
    expect(json.code).toBe(67);
    expect(JSON.parse(json.stdout).status).toMatchObject({code: 3, message: 'title must not be empty'});
  });

  it('an unknown method exits 2 with the closest candidates; an ambiguous one exits 2 listing both; bad data exits 2', async () => {
    const unknown = await tacos(['call', '--addr', srv().address, 'AllTypes.Bidy', '-d', '{}']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Did you mean: tacostest\.v1\.AllTypes\.Bidi/);

    const ambiguous = await tacos(['call', '--addr', srv().address, 'Unary', '-d', '{}']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('tacostest.v1.AllTypes.Unary');
    expect(ambiguous.stderr).toContain('tacostest.v1.Mirror.Unary');

    const badData = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{"f_int64": "twelve"}']);
    expect(badData.code).toBe(2);
    expect(badData.stderr).toMatch(/f_int64|fInt64/);

    const noMethod = await tacos(['call', '--addr', srv().address, '-d', '{}']);
    expect(noMethod.code).toBe(2);
  });

  it('--example prints a JSON skeleton that parses and can be sent back with -d @file', async () => {
    const example = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '--example']);
    expect(example.code).toBe(0);
    const skeleton = JSON.parse(example.stdout);
    expect(skeleton).toHaveProperty('fInt64');
    expect(skeleton).toHaveProperty('nested');
    expect(example.stderr).toContain('COLOR_GREEN');
    const file = path.join(project, 'example.json');
    await writeFile(file, example.stdout);
    const sent = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', `@${file}`]);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
  });

  it('the cached schema serves a second call while reflection is off; --refresh asks again and rewrites the cache', async () => {
    await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{}', '--refresh']);
    const dir = path.join(project, '.tacos', 'cache', 'reflection');
    const files = await readdir(dir);
    const cacheFiles = await Promise.all(
      files.map(async (name) => ({name, mtime: (await stat(path.join(dir, name))).mtimeMs})),
    );
    const asked = srv().reflectionCalls.length;
    srv().setReflection(false);
    try {
      const cached = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{"title":"cached"}']);
      expect(cached.code).toBe(0);
      expect(jsonObjects(cached.stdout)[0].got).toEqual({title: 'cached'});
      expect(srv().reflectionCalls.length).toBe(asked);
      const refused = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{}', '--refresh']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/reflection/i);
    } finally {
      srv().setReflection(true);
    }
    const refreshed = await tacos(['call', '--addr', srv().address, 'AllTypes.Unary', '-d', '{}', '--refresh']);
    expect(refreshed.code).toBe(0);
    expect(srv().reflectionCalls.length).toBeGreaterThan(asked);
    const after = await Promise.all(
      cacheFiles.map(async ({name}) => (await stat(path.join(dir, name)).catch(() => undefined))?.mtimeMs ?? 0),
    );
    expect(
      after.some((mtime, i) => mtime > cacheFiles[i].mtime),
      'a cache file was rewritten',
    ).toBe(true);
    expect(JSON.parse(await readFile(path.join(dir, files[0]), 'utf8'))).toHaveProperty('files');
  });
});

describe('tacos list and describe', () => {
  it('list shows the services (not reflection itself); list SERVICE shows methods with their streaming kind', async () => {
    const services = await tacos(['list', '--addr', srv().address]);
    expect(services.code).toBe(0);
    expect(services.stdout.trim().split('\n')).toEqual(['tacostest.v1.AllTypes', 'tacostest.v1.Mirror']);

    const methods = await tacos(['list', '--addr', srv().address, 'AllTypes']);
    expect(methods.code).toBe(0);
    const kinds = Object.fromEntries(
      methods.stdout
        .trim()
        .split('\n')
        .map((line) => line.trim().split(/\s{2,}/)),
    );
    expect(kinds).toEqual({
      'tacostest.v1.AllTypes.Unary': 'unary',
      'tacostest.v1.AllTypes.ServerStream': 'server streaming',
      'tacostest.v1.AllTypes.ClientStream': 'client streaming',
      'tacostest.v1.AllTypes.Bidi': 'bidi streaming',
      'tacostest.v1.AllTypes.Fail': 'unary',
    });

    const evans = await tacos(['list', '--host', '127.0.0.1', '--port', String(srv().port)]);
    expect(evans.code, 'Evans-style --host/--port').toBe(0);
    expect(evans.stdout).toContain('tacostest.v1.AllTypes');

    const unknown = await tacos(['list', '--addr', srv().address, 'NoSuchService']);
    expect(unknown.code).toBe(2);
  });

  it('describe shows a message as proto source with its comment', async () => {
    const result = await tacos(['describe', '--addr', srv().address, 'tacostest.v1.AllTypesMessage']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('// Every field type: declared out of number order on purpose (title first).');
    expect(result.stdout).toContain('message AllTypesMessage {');
    expect(result.stdout).toMatch(/map<int64, (tacostest\.v1\.)?Nested> by_id = 22;/);
    expect(result.stdout).toMatch(/optional int32 maybe = 25;/);

    const method = await tacos(['describe', '--addr', srv().address, 'AllTypes.Bidi']);
    expect(method.code).toBe(0);
    expect(method.stdout).toMatch(
      /rpc Bidi\s*\(\s*stream (\.?tacostest\.v1\.)?AllTypesMessage\s*\)\s*returns\s*\(\s*stream (\.?tacostest\.v1\.)?Echo\s*\)/,
    );
  });
});

/** A whole `tacos call` process that fails at once stays well under the 15 s connect timeout it is given. */
const FAIL_FAST_MS = 6000;

describe('connections', () => {
  it('an unreachable target fails fast with "Nothing answers" and a hint, exit 1', async () => {
    const port = await freePort();
    const started = Date.now();
    const result = await tacos([
      'call',
      '--addr',
      `127.0.0.1:${port}`,
      '--connect-timeout',
      '15s',
      'AllTypes.Unary',
      '-d',
      '{}',
    ]);
    const elapsed = Date.now() - started;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Nothing answers at 127.0.0.1:${port}`);
    expect(result.stderr).toMatch(/Hint:.*tacos up/);
    // Fast: it does not wait out the connect timeout (the bound leaves room for a loaded CI machine).
    expect(elapsed).toBeLessThan(FAIL_FAST_MS);
  });

  describe('TLS', () => {
    let tls: TestServer | undefined;
    beforeAll(async () => {
      if ('skip' in cert) return;
      tls = await startAllTypesServer({
        reflection: 'v1alpha',
        tls: {key: await readFile(cert.key), cert: await readFile(cert.cert)},
      });
      servers.push(tls);
    });

    it('plaintext against a TLS server fails fast, saying it probably speaks TLS', async (context) => {
      if (!tls) return context.skip();
      const started = Date.now();
      const mismatch = await tacos([
        'call',
        '--addr',
        tls.address,
        '--connect-timeout',
        '15s',
        'AllTypes.Unary',
        '-d',
        '{}',
      ]);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toMatch(/probably speaks TLS/);
      expect(mismatch.stderr).toMatch(/Hint:.*--tls/);
      expect(Date.now() - started).toBeLessThan(FAIL_FAST_MS);
    });

    it('--tls --insecure works against the self-signed certificate', async (context) => {
      if (!tls) return context.skip();
      const insecure = await tacos([
        'call',
        '--addr',
        tls.address,
        '--tls',
        '--insecure',
        'AllTypes.Unary',
        '-d',
        '{"title":"i"}',
      ]);
      expect(insecure.stderr).toBe('');
      expect(insecure.code).toBe(0);
      expect(jsonObjects(insecure.stdout)[0].got).toEqual({title: 'i'});
    });

    it('--tls --cacert FILE --servername localhost verifies it and works', async (context) => {
      if (!tls || 'skip' in cert) return context.skip();
      const verified = await tacos([
        'call',
        '--addr',
        tls.address,
        '--tls',
        '--cacert',
        cert.cert,
        '--servername',
        'localhost',
        'AllTypes.Unary',
        '-d',
        '{"title":"v"}',
        '--refresh',
      ]);
      expect(verified.stderr).toBe('');
      expect(verified.code).toBe(0);
      expect(jsonObjects(verified.stdout)[0].got).toEqual({title: 'v'});
    });
  });

  it('--proto FILE -I DIR works against a server without reflection', async () => {
    const bare = await startAllTypesServer({reflection: 'none'});
    servers.push(bare);
    const result = await tacos([
      'call',
      '--addr',
      bare.address,
      '--proto',
      ALL_TYPES_PROTO,
      '-I',
      FIXTURES,
      'AllTypes.Unary',
      '-d',
      `{"title":"p","f_uint64":"${BIG}"}`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)[0].got).toEqual({title: 'p', fUint64: BIG});

    const list = await tacos(['list', '--addr', bare.address, '--proto', ALL_TYPES_PROTO, '-I', FIXTURES]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('tacostest.v1.AllTypes');
  });

  it('works against @grpc/reflection over proto-loader (grpc-node#2595): maps and Timestamp', async () => {
    const defective = await startDefectiveServer();
    servers.push(defective);
    const result = await tacos([
      'call',
      '--addr',
      defective.address,
      'Stamper.Stamp',
      '-d',
      '{"name":"x","labels":{"k":"v"},"at":"2026-01-02T03:04:05Z"}',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.stdout)).toEqual([{greeting: 'hello x', labels: {k: 'v'}, at: '2026-01-02T03:04:05Z'}]);
  });
});
