/**
 * `tacos call` at the service level (runCall, output captured) against a server started here that
 * serves reflection v1alpha only: the v1 → v1alpha fallback, every field type through the proto3
 * JSON mapping, all four streaming kinds, request data from -d, @file and stdin, metadata reaching
 * the server (and reflection), -v, --json, an error with decoded details, method names.
 */
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TacosError} from '../../src/services/errors.js';
import {runCall, type CallRunOptions, type Prompter} from '../../src/services/grpc-client/run-call.js';
import {
  jsonObjects,
  startAllTypesServer,
  UNKNOWN_DETAIL_BYTES,
  UNKNOWN_DETAIL_TYPE,
  type TestServer,
} from '../helpers/call-servers.js';

let server: TestServer | undefined;
let stateDir: string;
const srv = () => server as TestServer;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'tacos-call-state-'));
  // The reflection cache goes to .tacos/cache/ of the state dir: one of our own per test file.
  process.env.TACOS_STATE_DIR = stateDir;
  server = await startAllTypesServer({reflection: 'v1alpha'});
});

afterAll(async () => {
  await server?.stop();
  await server?.stop();
  delete process.env.TACOS_STATE_DIR;
  await rm(stateDir, {recursive: true, force: true});
});

const noPrompts: Prompter = {
  method: () => Promise.reject(new Error('no prompts in this test')),
  request: () => Promise.reject(new Error('no prompts in this test')),
};

interface Outcome {
  code: number;
  out: string;
  err: string;
  error?: TacosError;
}

/** runCall as `tacos call` runs it, off a terminal; a TacosError becomes its exit code and message. */
async function call(options: Partial<CallRunOptions>, stdin = ''): Promise<Outcome> {
  let out = '';
  let err = '';
  try {
    const code = await runCall(
      {
        address: srv().address,
        headers: [],
        refresh: false,
        connectTimeoutMs: 3000,
        emitDefaults: false,
        protoNames: false,
        verbose: false,
        json: false,
        ...options,
      },
      {out: (text) => (out += text), err: (text) => (err += text), readStdin: async () => stdin, interactive: false},
      async () => noPrompts,
    );
    return {code, out, err};
  } catch (error) {
    if (!(error instanceof TacosError)) throw error;
    return {code: error.exitCode, out, err: `${error.message}\n${error.hint ?? ''}`, error};
  }
}

const BIG = '9007199254740993'; // 2^53 + 1: a JavaScript number cannot hold it

/** A request with every field type set, in proto (snake_case) names. */
const FULL_REQUEST = {
  title: 'every field',
  f_double: 1.5,
  f_float: 0.25,
  f_int32: -7,
  f_int64: BIG,
  f_uint32: 4294967295,
  f_uint64: '18446744073709551615',
  f_sint32: -2147483648,
  f_sint64: `-${BIG}`,
  f_fixed32: 7,
  f_fixed64: BIG,
  f_sfixed32: -7,
  f_sfixed64: `-${BIG}`,
  f_bool: true,
  f_string: 'tacos ñ 🌮',
  f_bytes: Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64'),
  color: 'COLOR_GREEN',
  nested: {name: 'n', id: BIG, color: 'COLOR_RED'},
  repeated_int64: ['1', BIG],
  repeated_string: ['a', 'b'],
  repeated_nested: [{name: 'r1'}, {name: 'r2', id: '2'}],
  counts: {a: 1, b: -2},
  by_id: {[BIG]: {name: 'big'}},
  choice_nested: {name: 'chosen'},
  maybe: 0,
  at: '2026-01-02T03:04:05.678Z',
  took: '1.5s',
  wrapped_string: 'w',
  wrapped_int64: BIG,
  wrapped_bool: false,
  extra: {k: 'v', n: 1, list: [true, null], obj: {x: 'y'}},
};

/** The same message as proto3 JSON prints it: JSON names, in declaration order (title first although its number is 50). */
const FULL_JSON = {
  title: 'every field',
  fDouble: 1.5,
  fFloat: 0.25,
  fInt32: -7,
  fInt64: BIG,
  fUint32: 4294967295,
  fUint64: '18446744073709551615',
  fSint32: -2147483648,
  fSint64: `-${BIG}`,
  fFixed32: 7,
  fFixed64: BIG,
  fSfixed32: -7,
  fSfixed64: `-${BIG}`,
  fBool: true,
  fString: 'tacos ñ 🌮',
  fBytes: 'AAEC/f7/',
  color: 'COLOR_GREEN',
  nested: {name: 'n', id: BIG, color: 'COLOR_RED'},
  repeatedInt64: ['1', BIG],
  repeatedString: ['a', 'b'],
  repeatedNested: [{name: 'r1'}, {name: 'r2', id: '2'}],
  counts: {a: 1, b: -2},
  byId: {[BIG]: {name: 'big'}},
  choiceNested: {name: 'chosen'},
  maybe: 0,
  at: '2026-01-02T03:04:05.678Z',
  took: '1.500s',
  wrappedString: 'w',
  wrappedInt64: BIG,
  wrappedBool: false,
  extra: {k: 'v', n: 1, list: [true, null], obj: {x: 'y'}},
};

describe('a server that serves reflection v1alpha only', () => {
  it('is called after falling back from v1 to v1alpha, and the schema is cached', async () => {
    const before = srv().reflectionCalls.length;
    const result = await call({method: 'tacostest.v1.AllTypes.Unary', data: '{"title":"hi"}', refresh: true});
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)).toEqual([{got: {title: 'hi'}, receivedMetadata: expect.any(Object)}]);
    expect(srv().reflectionCalls.length, 'the v1alpha service was asked').toBeGreaterThan(before);
    expect(await readdir(path.join(stateDir, 'cache', 'reflection'))).not.toHaveLength(0);
  });

  it('a second call reads the cached schema and does not ask the server again; --refresh asks anew', async () => {
    await call({method: 'AllTypes.Unary', data: '{}', refresh: true});
    const asked = srv().reflectionCalls.length;
    srv().setReflection(false);
    try {
      const cached = await call({method: 'AllTypes.Unary', data: '{"title":"cached"}'});
      expect(cached.code).toBe(0);
      expect(jsonObjects(cached.out)[0].got).toEqual({title: 'cached'});
      expect(srv().reflectionCalls.length, 'no reflection stream was opened').toBe(asked);
      const refreshed = await call({method: 'AllTypes.Unary', data: '{}', refresh: true});
      expect(refreshed.code, 'reflection is off now, so --refresh must fail').toBe(1);
      expect(refreshed.err).toMatch(/reflection/i);
    } finally {
      srv().setReflection(true);
    }
  });
});

describe('request and response in the proto3 JSON mapping', () => {
  it('every field type reaches the server intact and comes back as proto3 JSON in declaration order', async () => {
    const result = await call({method: 'AllTypes.Unary', data: JSON.stringify(FULL_REQUEST)});
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const [echo] = jsonObjects(result.out);
    expect(echo.got).toEqual(FULL_JSON);

    const got = srv().calls.at(-1)!.requests[0];
    expect(got.fInt64).toBe(9007199254740993n);
    expect(got.fUint64).toBe(18446744073709551615n);
    expect(got.fSint64).toBe(-9007199254740993n);
    expect(got.fFixed64).toBe(9007199254740993n);
    expect(got.fSfixed64).toBe(-9007199254740993n);
    expect(got.nested.id).toBe(9007199254740993n);
    expect(got.repeatedInt64).toEqual([1n, 9007199254740993n]);
    expect(got.byId[BIG]?.name).toBe('big');
    expect(Buffer.from(got.fBytes).toString('base64')).toBe('AAEC/f7/');
    expect(got.color).toBe(2);
    expect(got.choice).toEqual({case: 'choiceNested', value: expect.objectContaining({name: 'chosen'})});
    expect(got.maybe, 'a proto3 optional set to 0 is set').toBe(0);
    expect(got.at).toMatchObject({seconds: 1767323045n, nanos: 678_000_000});
    expect(got.took).toMatchObject({seconds: 1n, nanos: 500_000_000});
    expect(got.wrappedInt64).toBe(9007199254740993n);

    expect(Object.keys(echo)).toEqual(['got', 'receivedMetadata']);
    expect(Object.keys(echo.got), 'declaration order, not field numbers nor the alphabet').toEqual(
      Object.keys(FULL_JSON),
    );
  });

  it('JSON names in the request work as well as proto names, and --proto-names prints proto names', async () => {
    const result = await call({method: 'AllTypes.Unary', data: JSON.stringify(FULL_JSON), protoNames: true});
    expect(result.code).toBe(0);
    const [echo] = jsonObjects(result.out);
    expect(Object.keys(echo)).toEqual(['got', 'received_metadata']);
    expect(new Set(Object.keys(echo.got))).toEqual(new Set(Object.keys(FULL_REQUEST)));
    expect(echo.got.f_int64).toBe(BIG);
    expect(echo.got.by_id).toEqual({[BIG]: {name: 'big'}});
    expect(echo.got.repeated_nested).toEqual([{name: 'r1'}, {name: 'r2', id: '2'}]);
    expect(echo.got.took).toBe('1.500s');
  });

  it('a 64-bit integer written as a bare JSON number keeps its precision (as grpcurl reads it)', async () => {
    const result = await call({method: 'AllTypes.Unary', data: `{"f_int64": ${BIG}, "nested": {"id": -${BIG}}}`});
    expect(result.code).toBe(0);
    expect(srv().calls.at(-1)!.requests[0].fInt64, 'the server got 2^53+1, not 2^53').toBe(9007199254740993n);
    expect(jsonObjects(result.out)[0].got).toEqual({fInt64: BIG, nested: {id: `-${BIG}`}});
  });

  it('omits default values unless --emit-defaults, which prints every implicit field (but not unset optionals or messages)', async () => {
    const plain = await call({method: 'AllTypes.Unary', data: '{"f_int32": 0, "color": "COLOR_UNSPECIFIED"}'});
    expect(jsonObjects(plain.out)[0].got).toEqual({});

    const result = await call({method: 'AllTypes.Unary', data: '{}', emitDefaults: true});
    expect(result.code).toBe(0);
    const {got, index} = jsonObjects(result.out)[0];
    expect(index).toBe(0);
    expect(got).toMatchObject({
      title: '',
      fDouble: 0,
      fInt64: '0',
      fUint64: '0',
      fFixed64: '0',
      fBool: false,
      fString: '',
      fBytes: '',
      color: 'COLOR_UNSPECIFIED',
      repeatedInt64: [],
      repeatedNested: [],
      counts: {},
      byId: {},
    });
    expect(got).not.toHaveProperty('maybe');
    expect(got).not.toHaveProperty('nested');
    expect(got).not.toHaveProperty('at');
  });

  it('a request that is not the input type is a usage error naming the field (exit 2), and nothing is sent', async () => {
    const calls = srv().calls.length;
    const unknownField = await call({method: 'AllTypes.Unary', data: '{"no_such_field": 1}'});
    expect(unknownField.code).toBe(2);
    expect(unknownField.err).toMatch(/no_such_field/);
    expect(unknownField.err).toMatch(/--example/);
    const badEnum = await call({method: 'AllTypes.Unary', data: '{"color": "COLOR_PURPLE"}'});
    expect(badEnum.code).toBe(2);
    expect(badEnum.err).toMatch(/COLOR_PURPLE/);
    const notJson = await call({method: 'AllTypes.Unary', data: '{"title": '});
    expect(notJson.code).toBe(2);
    expect(srv().calls.length).toBe(calls);
  });
});

describe('request data: -d JSON, -d @file, -d @- and stdin', () => {
  it('-d @file reads the file, -d @- reads stdin, and no -d off a terminal sends an empty request (stdin unread)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tacos-call-data-'));
    try {
      const file = path.join(dir, 'request.json');
      await writeFile(file, JSON.stringify({title: 'from a file', f_int64: BIG}));
      const fromFile = await call({method: 'AllTypes.Unary', data: `@${file}`});
      expect(fromFile.code).toBe(0);
      expect(jsonObjects(fromFile.out)[0].got).toEqual({title: 'from a file', fInt64: BIG});

      const fromStdin = await call({method: 'AllTypes.Unary', data: '@-'}, '{"title": "from stdin"}\n');
      expect(jsonObjects(fromStdin.out)[0].got).toEqual({title: 'from stdin'});

      const piped = await call({method: 'AllTypes.Unary'}, '{"title": "piped"}');
      expect(piped.code).toBe(0);
      expect(jsonObjects(piped.out)[0].got).toEqual({});

      const missing = await call({method: 'AllTypes.Unary', data: `@${path.join(dir, 'nope.json')}`});
      expect(missing.code).toBe(2);
      expect(missing.err).toContain('nope.json');
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });

  it('no request at all sends an empty message to a unary method', async () => {
    const result = await call({method: 'AllTypes.Unary'}, '');
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out)[0].got).toEqual({});
  });

  it('a unary method given two messages is a usage error', async () => {
    const result = await call({method: 'AllTypes.Unary', data: '{"title":"a"} {"title":"b"}'});
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/exactly one/);
  });
});

describe('all four streaming kinds', () => {
  it('server streaming prints each response as it arrives', async () => {
    const result = await call({method: 'AllTypes.ServerStream', data: '{"title":"s"}'});
    expect(result.code).toBe(0);
    const messages = jsonObjects(result.out);
    expect(messages.map((message) => message.index)).toEqual([1, 2, 3]);
    for (const message of messages) expect(message.got).toEqual({title: 's'});
  });

  it('server streaming messages are printed when they arrive, not when the stream ends', async () => {
    const started = Date.now();
    const printedAt: number[] = [];
    const result = await runCall(
      {
        address: srv().address,
        headers: ['x-gap-ms: 300'],
        refresh: false,
        connectTimeoutMs: 3000,
        emitDefaults: false,
        protoNames: false,
        verbose: false,
        json: false,
        method: 'AllTypes.ServerStream',
        data: '{}',
      },
      {
        out: () => printedAt.push(Date.now() - started),
        err: () => undefined,
        readStdin: async () => '',
        interactive: false,
      },
      async () => noPrompts,
    );
    const ended = Date.now() - started;
    expect(result).toBe(0);
    expect(printedAt).toHaveLength(3);
    expect(ended - printedAt[0], 'the first message was out ~600 ms before the end').toBeGreaterThan(400);
  });

  it('client streaming sends several JSON objects one after another (same line, next lines, with commas in strings)', async () => {
    const result = await call({
      method: 'tacostest.v1.AllTypes/ClientStream',
      data: `{"title":"one, {two}"} {"f_int64":"${BIG}"}\n\n{"color":"COLOR_RED"}\n`,
    });
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const [reply] = jsonObjects(result.out);
    expect(reply.got).toEqual([{title: 'one, {two}'}, {fInt64: BIG}, {color: 'COLOR_RED'}]);
    expect(srv().calls.at(-1)!.requests).toHaveLength(3);
  });

  it('client streaming from stdin, and with no message at all', async () => {
    const piped = await call({method: 'AllTypes.ClientStream', data: '@-'}, '{"title":"a"}\n{"title":"b"}\n');
    expect(jsonObjects(piped.out)[0].got).toEqual([{title: 'a'}, {title: 'b'}]);
    const empty = await call({method: 'AllTypes.ClientStream', data: ''});
    expect(empty.code).toBe(0);
    expect(jsonObjects(empty.out)[0]).not.toHaveProperty('got');
  });

  it('bidi streaming echoes each message', async () => {
    const result = await call({method: 'Bidi', data: '{"title":"x"}{"title":"y"}'});
    expect(result.code).toBe(0);
    expect(jsonObjects(result.out).map((message) => [message.index, message.got.title])).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
  });
});

describe('metadata', () => {
  it('-H reaches the server, and reflection too', async () => {
    const before = srv().reflectionCalls.length;
    const result = await call({
      method: 'AllTypes.Unary',
      data: '{}',
      headers: ['X-Team: tacos', 'x-trace:  abc:def'],
      refresh: true,
    });
    expect(result.code).toBe(0);
    const {receivedMetadata} = jsonObjects(result.out)[0];
    expect(receivedMetadata).toMatchObject({'x-team': 'tacos', 'x-trace': 'abc:def'});
    expect(srv().calls.at(-1)!.metadata).toMatchObject({'x-team': 'tacos'});
    const reflection = srv().reflectionCalls.slice(before);
    expect(reflection.length).toBeGreaterThan(0);
    for (const metadata of reflection) expect(metadata['x-team']).toBe('tacos');
  });

  it('--reflect-header goes to reflection only; -H then goes to the call only', async () => {
    const before = srv().reflectionCalls.length;
    const result = await call({
      method: 'AllTypes.Unary',
      data: '{}',
      headers: ['x-call: 1'],
      reflectHeaders: ['x-reflect: 2'],
      refresh: true,
    });
    expect(result.code).toBe(0);
    expect(srv().calls.at(-1)!.metadata['x-call']).toBe('1');
    expect(srv().calls.at(-1)!.metadata).not.toHaveProperty('x-reflect');
    const reflection = srv().reflectionCalls.slice(before);
    expect(reflection.length).toBeGreaterThan(0);
    for (const metadata of reflection) {
      expect(metadata['x-reflect']).toBe('2');
      expect(metadata).not.toHaveProperty('x-call');
    }
  });

  it('--token sends authorization: Bearer TOKEN', async () => {
    const result = await call({method: 'AllTypes.Unary', data: '{}', token: 'secret-token'});
    expect(result.code).toBe(0);
    expect(srv().calls.at(-1)!.metadata.authorization).toBe('Bearer secret-token');
  });

  it('a malformed -H is a usage error', async () => {
    const result = await call({method: 'AllTypes.Unary', data: '{}', headers: ['no colon here']});
    expect(result.code).toBe(2);
    expect(result.err).toContain('no colon here');
  });

  it('-v prints the response headers before the messages and the trailers after them', async () => {
    const result = await call({method: 'AllTypes.ServerStream', data: '{}', verbose: true});
    expect(result.code).toBe(0);
    const headers = result.out.indexOf('Response headers:');
    const header = result.out.indexOf('x-echo-header: hello');
    const firstMessage = result.out.indexOf('"index": 1');
    const trailers = result.out.indexOf('Response trailers:');
    const trailer = result.out.indexOf('x-echo-trailer: done');
    expect(headers).toBeGreaterThanOrEqual(0);
    expect(header).toBeGreaterThan(headers);
    expect(firstMessage).toBeGreaterThan(header);
    expect(trailers).toBeGreaterThan(firstMessage);
    expect(trailer).toBeGreaterThan(trailers);
  });

  it('--json prints one object: status, headers, messages, trailers', async () => {
    const result = await call({method: 'AllTypes.ServerStream', data: '{"title":"j"}', json: true});
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.out);
    expect(Object.keys(printed)).toEqual(['status', 'headers', 'messages', 'trailers']);
    expect(printed.status).toMatchObject({code: 0, name: expect.stringMatching(/^OK$/i)});
    expect(printed.headers['x-echo-header']).toEqual(['hello']);
    expect(printed.messages.map((message: any) => message.index)).toEqual([1, 2, 3]);
    expect(printed.messages[0].got).toEqual({title: 'j'});
    expect(printed.trailers['x-echo-trailer']).toEqual(['done']);
  });
});

describe('a gRPC error', () => {
  it('prints an ERROR block with code name and number, message and decoded details, and exits 64 + code', async () => {
    const result = await call({method: 'AllTypes.Fail', data: '{}'});
    expect(result.code).toBe(64 + 3);
    expect(result.out).toBe('');
    expect(result.err).toMatch(/^ERROR:/);
    expect(result.err).toMatch(/Code: (InvalidArgument|INVALID_ARGUMENT) \(3\)/);
    expect(result.err).toContain('title must not be empty');
    expect(result.err).toContain('type.googleapis.com/google.rpc.BadRequest');
    expect(result.err).toMatch(/"field": "title"/);
    expect(result.err).toContain('type.googleapis.com/google.rpc.RetryInfo');
    expect(result.err).toMatch(/"retryDelay": "1\.500s"/);
    // A detail of a type nobody knows: its bytes in base64, as grpcurl prints them.
    expect(result.err).toContain(UNKNOWN_DETAIL_TYPE);
    expect(result.err).toContain(UNKNOWN_DETAIL_BYTES.toString('base64'));
  });

  it('--json carries the error status with the decoded details, and the trailers without the raw details', async () => {
    const result = await call({method: 'AllTypes.Fail', data: '{}', json: true});
    expect(result.code).toBe(67);
    const printed = JSON.parse(result.out);
    expect(printed.status).toMatchObject({
      code: 3,
      name: expect.stringMatching(/^(InvalidArgument|INVALID_ARGUMENT)$/),
      message: 'title must not be empty',
    });
    expect(printed.status.details).toEqual([
      {
        '@type': 'type.googleapis.com/google.rpc.BadRequest',
        fieldViolations: [{field: 'title', description: 'must not be empty'}],
      },
      {'@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1.500s'},
      {'@type': UNKNOWN_DETAIL_TYPE, value: UNKNOWN_DETAIL_BYTES.toString('base64')},
    ]);
    expect(printed.messages).toEqual([]);
    expect(printed.trailers['x-echo-trailer']).toEqual(['done']);
    expect(printed.trailers).not.toHaveProperty('grpc-status-details-bin');
  });

  it('--timeout sets the deadline of the call: an exceeded one is DEADLINE_EXCEEDED (exit 68), at once', async () => {
    const started = Date.now();
    const result = await call({method: 'AllTypes.Unary', data: '{}', headers: ['x-delay-ms: 3000'], timeoutMs: 200});
    expect(result.code).toBe(64 + 4);
    expect(result.err).toMatch(/Code: (DeadlineExceeded|DEADLINE_EXCEEDED) \(4\)/);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('method names', () => {
  it.each([
    'tacostest.v1.AllTypes.Unary',
    'tacostest.v1.AllTypes/Unary',
    'AllTypes.Unary',
    'AllTypes/Unary',
    'ServerStream',
  ])('%s is found', async (name) => {
    const result = await call({method: name, data: '{}'});
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(srv().calls.at(-1)!.method).toBe(name === 'ServerStream' ? 'AllTypes/ServerStream' : 'AllTypes/Unary');
  });

  it('an unknown method exits 2 and lists the closest candidates first', async () => {
    const calls = srv().calls.length;
    const result = await call({method: 'AllTypes.Unery', data: '{}'});
    expect(result.code).toBe(2);
    expect(result.err).toContain('AllTypes.Unery');
    const suggested = /Did you mean: ([^?]+)\?/.exec(result.err)?.[1].split(', ');
    expect(suggested?.[0]).toBe('tacostest.v1.AllTypes.Unary');
    expect(srv().calls.length).toBe(calls);

    const streaming = await call({method: 'ServerStreem', data: '{}'});
    expect(streaming.code).toBe(2);
    expect(/Did you mean: ([^?]+)\?/.exec(streaming.err)?.[1].split(', ')[0]).toBe(
      'tacostest.v1.AllTypes.ServerStream',
    );
  });

  it('an ambiguous bare name exits 2 and lists both', async () => {
    const result = await call({method: 'Unary', data: '{}'});
    expect(result.code).toBe(2);
    expect(result.err).toContain('tacostest.v1.AllTypes.Unary');
    expect(result.err).toContain('tacostest.v1.Mirror.Unary');
    const mirror = await call({method: 'Mirror.Unary', data: '{}'});
    expect(mirror.code).toBe(0);
    expect(srv().calls.at(-1)!.method).toBe('Mirror/Unary');
  });
});
