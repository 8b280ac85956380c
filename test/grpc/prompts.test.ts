import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {createRequire} from 'node:module';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {PassThrough} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {stripVTControlCharacters} from 'node:util';
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  toJson,
  type DescMethod,
  type FileRegistry,
  type JsonValue,
} from '@bufbuild/protobuf';
import {FileDescriptorSetSchema} from '@bufbuild/protobuf/wkt';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TacosError} from '../../src/services/errors.js';
import type {Prompter} from '../../src/services/grpc-client/run-call.js';
import {loadContractSet} from '../../src/services/contracts.js';
import {createPrompter, parseDuration, parseTimestamp} from '../../src/services/grpc-client/prompts.js';
import type {Schema} from '../../src/services/grpc-client/schema.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const ENTER = '\r';
const DOWN = '\x1b[B';
const STEP_TIMEOUT_MS = 3000;

let registry: FileRegistry;
let tmp: string;

beforeAll(async () => {
  // The fixture compiled by the project's buf, as real servers' descriptors are.
  tmp = await mkdtemp(path.join(tmpdir(), 'tacos-prompts-'));
  const out = path.join(tmp, 'all_types.binpb');
  const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
  await execa(process.execPath, [buf, 'build', '-o', out], {cwd: FIXTURES, timeout: 30_000});
  registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, new Uint8Array(await readFile(out))));
});

afterAll(async () => {
  if (tmp) await rm(tmp, {recursive: true, force: true});
});

function method(service: string, name: string): DescMethod {
  const found = registry.getService(`tacos.test.v1.${service}`)?.methods.find((m) => m.name === name);
  if (!found) throw new Error(`no method ${service}.${name}`);
  return found;
}

/** A step: wait until the prompt shows `expect`, then type each chunk (one keypress batch each). */
type Step = [expect: RegExp, ...keys: string[]];

/**
 * Runs prompts against a fake terminal: each step waits (bounded) for its text to appear in what
 * was printed since the previous answer, then types. Returns the result and the whole transcript.
 */
async function drive<T>(
  run: (prompter: Prompter) => Promise<T>,
  steps: Step[],
): Promise<{result: T; transcript: string}> {
  const input = new PassThrough();
  const output = new PassThrough();
  let transcript = '';
  let screen = '';
  let waiter: (() => void) | undefined;
  output.on('data', (chunk: Buffer) => {
    const text = stripVTControlCharacters(chunk.toString());
    transcript += text;
    screen += text;
    waiter?.();
  });
  const waitFor = (expected: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${expected}; screen since last answer:\n${screen}`)),
        STEP_TIMEOUT_MS,
      );
      waiter = () => {
        if (!expected.test(screen)) return;
        clearTimeout(timer);
        waiter = undefined;
        resolve();
      };
      waiter();
    });
  const result = run(createPrompter({input, output}));
  const script = (async () => {
    for (const [expected, ...keys] of steps) {
      await Promise.race([
        waitFor(expected),
        result.then(() => Promise.reject(new Error(`finished before ${expected}`))),
      ]);
      screen = '';
      for (const key of keys) {
        // Let the prompt's keypress handlers settle between batches (a select moves, then Enter).
        await new Promise((resolve) => setImmediate(resolve));
        input.write(key);
      }
    }
  })();
  await Promise.race([script, result]);
  await script;
  let timer: NodeJS.Timeout | undefined;
  const value = await Promise.race([
    result,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result after the last step; screen:\n${screen}`)), STEP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  return {result: value, transcript};
}

/** Fills one request of `desc` and checks that the JSON is valid for it. */
async function request(m: DescMethod, steps: Step[]): Promise<{json: JsonValue; transcript: string}> {
  const {result, transcript} = await drive((p) => p.request(m, registry), steps);
  expect(result).toHaveLength(1);
  const json = result[0];
  // What the call runner does next: must not throw.
  fromJson(m.input, json, {registry});
  return {json, transcript};
}

const down = (n: number) => Array.from({length: n}, () => DOWN);

describe('request prompts', () => {
  it('asks scalars in declaration order with Evans labels; int32 rejects text and re-asks; int64 stays exact', async () => {
    const m = method('FieldsService', 'SetScalars');
    const {json, transcript} = await request(m, [
      [/name \(TYPE_STRING\) =>/, `taco${ENTER}`],
      [/count \(TYPE_INT32\) =>/, `x${ENTER}`],
      [/Not a 32-bit integer: x/, `99999999999${ENTER}`],
      [/Out of range/, `42${ENTER}`],
      [/big \(TYPE_INT64\) =>/, `9007199254740993${ENTER}`],
      [/enabled \(TYPE_BOOL\)/, `y${ENTER}`],
      [/ratio \(TYPE_DOUBLE\) =>/, `abc${ENTER}`],
      [/Not a number/, `-2.5e3${ENTER}`],
      [/blob \(TYPE_BYTES, base64\) =>/, `not base64!${ENTER}`],
      [/Not base64/, `aGVsbG8=${ENTER}`],
      [/small \(TYPE_UINT32\) =>/, `-1${ENTER}`],
      [/Out of range/, ENTER],
      [/weight \(TYPE_FLOAT\) =>/, `0.5${ENTER}`],
      [/huge \(TYPE_UINT64\) =>/, `18446744073709551615${ENTER}`],
    ]);
    expect(json).toEqual({
      name: 'taco',
      count: 42,
      big: '9007199254740993',
      enabled: true,
      ratio: -2500,
      blob: 'aGVsbG8=',
      weight: 0.5,
      huge: '18446744073709551615',
    });
    // The exact value reaches the message, not 9007199254740992.
    expect(fromJson(m.input, json)).toMatchObject({big: 9007199254740993n});
    expect(transcript).toMatch(/✔ name \(TYPE_STRING\) => taco/);
  });

  it('leaves proto3 scalars at their defaults on empty answers (omitted from the JSON)', async () => {
    const {json} = await request(method('FieldsService', 'SetScalars'), [
      [/name \(TYPE_STRING\) =>/, ENTER],
      [/count \(TYPE_INT32\) =>/, `0${ENTER}`],
      [/big \(TYPE_INT64\) =>/, ENTER],
      [/enabled \(TYPE_BOOL\)/, ENTER],
      [/ratio \(TYPE_DOUBLE\) =>/, ENTER],
      [/blob \(TYPE_BYTES, base64\) =>/, ENTER],
      [/small \(TYPE_UINT32\) =>/, ENTER],
      [/weight \(TYPE_FLOAT\) =>/, ENTER],
      [/huge \(TYPE_UINT64\) =>/, ENTER],
    ]);
    expect(json).toEqual({});
  });

  it('chooses enum values from a list of their names', async () => {
    const {json, transcript} = await request(method('FieldsService', 'SetEnum'), [
      [/color \(TYPE_ENUM tacos\.test\.v1\.Color\) =>/, ...down(2), ENTER],
    ]);
    expect(json).toEqual({color: 'COLOR_GREEN'});
    expect(transcript).toMatch(/COLOR_UNSPECIFIED \(0\)[\s\S]*COLOR_RED \(1\)[\s\S]*COLOR_GREEN \(2\)/);
  });

  it('fills nested messages field by field, labelled with their ancestors', async () => {
    const {json} = await request(method('FieldsService', 'SetNested'), [
      [/id \(TYPE_STRING\) =>/, `n-1${ENTER}`],
      [/inner::note \(TYPE_STRING\) =>/, `hello${ENTER}`],
      [/inner::count \(TYPE_INT32\) =>/, `3${ENTER}`],
    ]);
    expect(json).toEqual({id: 'n-1', inner: {note: 'hello', count: 3}});
  });

  it('leaves an untouched nested message unset', async () => {
    const {json} = await request(method('FieldsService', 'SetNested'), [
      [/id \(TYPE_STRING\) =>/, ENTER],
      [/inner::note/, ENTER],
      [/inner::count/, ENTER],
    ]);
    expect(json).toEqual({});
  });

  it('asks repeated fields element after element until an empty answer; repeated messages with "add another"', async () => {
    const {json} = await request(method('FieldsService', 'SetLists'), [
      [/tags\[0\] \(TYPE_STRING, empty ends\) =>/, `a${ENTER}`],
      [/tags\[1\]/, `b${ENTER}`],
      [/tags\[2\]/, ENTER],
      [/add items\? \(repeated tacos\.test\.v1\.Inner\)/, `y${ENTER}`],
      [/items\[0\]::note/, `first${ENTER}`],
      [/items\[0\]::count/, `1${ENTER}`],
      [/add another items\?/, `y${ENTER}`],
      [/items\[1\]::note/, `second${ENTER}`],
      [/items\[1\]::count/, ENTER],
      [/add another items\?/, ENTER],
      [/ids\[0\] \(TYPE_INT64, empty ends\) =>/, `9223372036854775807${ENTER}`],
      [/ids\[1\]/, ENTER],
      [/colors\[0\] \(TYPE_ENUM/, ...down(2), ENTER],
      [/colors\[1\] \(TYPE_ENUM/, ENTER],
    ]);
    expect(json).toEqual({
      tags: ['a', 'b'],
      items: [{note: 'first', count: 1}, {note: 'second'}],
      ids: ['9223372036854775807'],
      colors: ['COLOR_RED'],
    });
  });

  it('asks maps key then value until an empty key', async () => {
    const {json} = await request(method('FieldsService', 'SetMaps'), [
      [/scores::key \(TYPE_STRING, empty ends\) =>/, `alice${ENTER}`],
      [/scores\[alice\] \(TYPE_INT32\) =>/, `10${ENTER}`],
      [/scores::key/, `bob${ENTER}`],
      [/scores\[bob\] \(TYPE_INT32\) =>/, ENTER],
      [/scores::key/, ENTER],
      [/by_id::key \(TYPE_INT64, empty ends\) =>/, `x${ENTER}`],
      [/Not a 64-bit integer/, `9007199254740993${ENTER}`],
      [/by_id\[9007199254740993\]::note/, `big${ENTER}`],
      [/by_id\[9007199254740993\]::count/, ENTER],
      [/by_id::key/, ENTER],
    ]);
    expect(json).toEqual({scores: {alice: 10, bob: 0}, byId: {'9007199254740993': {note: 'big'}}});
  });

  it('chooses a oneof case from a list, "none" included', async () => {
    const m = method('FieldsService', 'SetChoice');
    const first = await request(m, [
      [/label \(TYPE_STRING\)/, `l${ENTER}`],
      [/pick \(oneof\) =>/, ...down(2), ENTER],
      [/detail::note/, `inside${ENTER}`],
      [/detail::count/, ENTER],
    ]);
    expect(first.json).toEqual({label: 'l', detail: {note: 'inside'}});
    expect(first.transcript).toMatch(
      /none[\s\S]*text \(TYPE_STRING\)[\s\S]*detail \(TYPE_MESSAGE tacos\.test\.v1\.Inner\)[\s\S]*number \(TYPE_INT32\)/,
    );

    // A chosen case is set even at its default value.
    const zero = await request(m, [
      [/label/, ENTER],
      [/pick \(oneof\) =>/, ...down(3), ENTER],
      [/number \(TYPE_INT32\) =>/, ENTER],
    ]);
    expect(zero.json).toEqual({number: 0});

    const none = await request(m, [
      [/label/, ENTER],
      [/pick \(oneof\) =>/, ENTER],
    ]);
    expect(none.json).toEqual({});
  });

  it('lets proto3 optional fields stay unset, or be set to their default explicitly', async () => {
    const m = method('FieldsService', 'SetOptionals');
    const unset = await request(m, [
      [/nickname \(TYPE_STRING, optional, empty leaves unset, "" for empty\) =>/, ENTER],
      [/age \(TYPE_INT32, optional, empty leaves unset\) =>/, ENTER],
      [/color \(TYPE_ENUM/, ENTER],
      [/flag \(TYPE_BOOL\)/, ENTER],
      [/fill inner\? \(tacos\.test\.v1\.Inner\)/, ENTER],
    ]);
    expect(unset.json).toEqual({});
    expect(unset.transcript).toMatch(/leave unset[\s\S]*COLOR_UNSPECIFIED/);

    const set = await request(m, [
      [/nickname/, `""${ENTER}`],
      [/age/, `0${ENTER}`],
      [/color \(TYPE_ENUM/, DOWN, ENTER],
      [/flag \(TYPE_BOOL\)/, ...down(2), ENTER],
      [/fill inner\?/, `y${ENTER}`],
      [/inner::note/, ENTER],
      [/inner::count/, ENTER],
    ]);
    expect(set.json).toEqual({nickname: '', age: 0, color: 'COLOR_UNSPECIFIED', flag: false, inner: {}});
  });

  it('reads Timestamp as RFC 3339, Duration as 1.5s, wrappers as their scalar, Struct and Any as JSON', async () => {
    const {json} = await request(method('FieldsService', 'SetWellKnown'), [
      [/at \(google\.protobuf\.Timestamp, RFC 3339/, `2026-13-25T10:00:00Z${ENTER}`],
      [/Not a valid date/, `tomorrow${ENTER}`],
      [/Not an RFC 3339 timestamp/, `2026-11-25T10:00:00Z${ENTER}`],
      [/wait \(google\.protobuf\.Duration/, `soon${ENTER}`],
      [/Not a duration/, `1.5s${ENTER}`],
      [/limit \(TYPE_INT64, optional, empty leaves unset\) =>/, `9007199254740993${ENTER}`],
      [/title \(TYPE_STRING, optional/, ENTER],
      [/extra \(google\.protobuf\.Struct, JSON object/, `[1]${ENTER}`],
      [/Not a JSON object/, `{"a": [1, "b"]}${ENTER}`],
      [/any \(google\.protobuf\.Any, JSON with "@type"/, `{"@type": "type.googleapis.com/nope.Missing"}${ENTER}`],
      [/Unknown type nope\.Missing/, `{"@type": "type.googleapis.com/tacos.test.v1.Inner", "note": "n"}${ENTER}`],
    ]);
    expect(json).toEqual({
      at: '2026-11-25T10:00:00Z',
      wait: '1.500s',
      limit: '9007199254740993',
      extra: {a: [1, 'b']},
      any: {'@type': 'type.googleapis.com/tacos.test.v1.Inner', note: 'n'},
    });
  });

  it('offers a recursive message only on request, and not beyond three levels of itself', async () => {
    const {json, transcript} = await drive(
      (p) => p.request(method('FieldsService', 'SetNode'), registry),
      [
        [/name \(TYPE_STRING\)/, `root${ENTER}`],
        [/fill child\? \(tacos\.test\.v1\.Node\)/, `y${ENTER}`],
        [/child::name/, `one${ENTER}`],
        [/fill child::child\?/, `y${ENTER}`],
        [/child::child::name/, `two${ENTER}`],
      ],
    ).then(({result, transcript}) => ({json: result[0], transcript}));
    expect(json).toEqual({name: 'root', child: {name: 'one', child: {name: 'two'}}});
    expect(transcript).not.toMatch(/child::child::child/);
  });

  it('asks message after message for client streaming until declined; one for server streaming', async () => {
    const upload = await drive(
      (p) => p.request(method('StreamService', 'Upload'), registry),
      [
        [/note/, `one${ENTER}`],
        [/count/, ENTER],
        [/send another message\? \(1 so far\)/, `y${ENTER}`],
        [/note/, `two${ENTER}`],
        [/count/, `2${ENTER}`],
        [/send another message\? \(2 so far\)/, `n${ENTER}`],
      ],
    );
    expect(upload.result).toEqual([{note: 'one'}, {note: 'two', count: 2}]);

    const watch = await drive(
      (p) => p.request(method('StreamService', 'Watch'), registry),
      [
        [/note/, `only${ENTER}`],
        [/count/, ENTER],
      ],
    );
    expect(watch.result).toEqual([{note: 'only'}]);
    expect(watch.transcript).not.toMatch(/send another/);
  });

  it('fills a real contract: gateway.v1.JoinQueueRequest with its nested metadata and map', async () => {
    const contracts = await loadContractSet();
    const join = contracts.registry.getService('gateway.v1.QueueService')?.methods.find((m) => m.name === 'JoinQueue');
    if (!join) throw new Error('gateway.v1.QueueService.JoinQueue not found');
    const steps: Step[] = [
      [/event_id \(TYPE_STRING\) =>/, `evt-1${ENTER}`],
      [/user_id \(TYPE_STRING\) =>/, `u-1${ENTER}`],
      [/session_id \(TYPE_STRING\) =>/, ENTER],
      [/metadata::ip_address \(TYPE_STRING\) =>/, ENTER],
      [/metadata::user_agent \(TYPE_STRING\) =>/, `curl/8${ENTER}`],
      [/metadata::referer/, ENTER],
      [/metadata::country_code/, `KR${ENTER}`],
      [/metadata::headers::key \(TYPE_STRING, empty ends\) =>/, `x-trace${ENTER}`],
      [/metadata::headers\[x-trace\] \(TYPE_STRING\) =>/, `abc${ENTER}`],
      [/metadata::headers::key/, ENTER],
    ];
    const {result, transcript} = await drive((p) => p.request(join, contracts.registry), steps);
    expect(result).toEqual([
      {
        eventId: 'evt-1',
        userId: 'u-1',
        metadata: {userAgent: 'curl/8', countryCode: 'KR', headers: {'x-trace': 'abc'}},
      },
    ]);
    expect(transcript).toMatch(/✔ metadata::user_agent \(TYPE_STRING\) => curl\/8/);
    fromJson(join.input, result[0], {registry: contracts.registry});
  });

  it('turns Ctrl-C and Ctrl-D into "Cancelled." with exit code 130', async () => {
    for (const key of ['\x03', '\x04']) {
      const error = await drive(
        (p) => p.request(method('FieldsService', 'SetScalars'), registry),
        [[/name/, key]],
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TacosError);
      expect(error).toMatchObject({message: 'Cancelled.', exitCode: 130});
    }
  });
});

describe('method prompt', () => {
  it('chooses a service, then a method showing its streaming kind', async () => {
    const schema: Schema = {
      registry,
      services: [
        registry.getService('tacos.test.v1.FieldsService'),
        registry.getService('tacos.test.v1.StreamService'),
      ].filter((s) => s !== undefined),
    };
    const {result, transcript} = await drive(
      (p) => p.method(schema),
      [
        [/service =>[\s\S]*tacos\.test\.v1\.StreamService/, DOWN, ENTER],
        [/tacos\.test\.v1\.StreamService method =>/, ...down(2), ENTER],
      ],
    );
    expect(`${result.parent.typeName}.${result.name}`).toBe('tacos.test.v1.StreamService.Chat');
    expect(transcript).toMatch(
      /Watch \(server streaming\)[\s\S]*Upload \(client streaming\)[\s\S]*Chat \(bidi streaming\)/,
    );
  });

  it('goes straight to the methods when there is one service', async () => {
    const service = registry.getService('tacos.test.v1.StreamService');
    if (!service) throw new Error('no StreamService');
    const {result} = await drive(
      (p) => p.method({registry, services: [service]}),
      [[/StreamService method =>/, ENTER]],
    );
    expect(result.name).toBe('Watch');
  });
});

describe('well-known formats', () => {
  it('normalizes timestamps to UTC and keeps nanoseconds; rejects impossible dates', () => {
    expect(parseTimestamp('2026-11-25T10:00:00+02:00')).toBe('2026-11-25T08:00:00Z');
    expect(parseTimestamp('2026-11-25t10:00:00.123456789z')).toBe('2026-11-25T10:00:00.123456789Z');
    expect(parseTimestamp('0001-01-01T00:00:00Z')).toBe('0001-01-01T00:00:00Z');
    expect(() => parseTimestamp('2026-02-30T00:00:00Z')).toThrow(/Not a valid date/);
    expect(() => parseTimestamp('2026-11-25')).toThrow(/RFC 3339/);
  });

  it('reads durations in Go syntax and writes the proto3 JSON form', () => {
    expect(parseDuration('1.5s')).toBe('1.500s');
    expect(parseDuration('-250ms')).toBe('-0.250s');
    expect(parseDuration('1h30m')).toBe('5400s');
    expect(parseDuration('0s')).toBe('0s');
    expect(() => parseDuration('1.5')).toThrow(/Not a duration/);
    // The result is what protobuf-es itself produces for the same value.
    expect(
      toJson(
        registry.getMessage('google.protobuf.Duration')!,
        fromJson(registry.getMessage('google.protobuf.Duration')!, parseDuration('90s')),
      ),
    ).toBe('90s');
  });
});
