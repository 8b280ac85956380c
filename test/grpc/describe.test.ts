/**
 * `tacos list` / `tacos describe` / `--example` as pure functions over a resolved schema: the
 * project's own contracts for the realistic cases, a fixture .proto (compiled with buf, so it
 * carries source comments as a compiler writes them) for oneofs, proto3 optional, recursion,
 * client/bidi streaming, well-known types and proto2 labels.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {clone, fromBinary, fromJson, toJson, type DescMessage} from '@bufbuild/protobuf';
import {FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';
import {describeSymbol, exampleRequest, listMethods, listServices} from '../../src/services/grpc-client/describe.js';
import {buildSchema, type Schema} from '../../src/services/grpc-client/schema.js';
import {TacosError} from '../../src/services/errors.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const FIXTURE_FILES = ['describe_fixture.proto', 'describe_legacy.proto'];
/** buildSchema repairs files in place; give it copies so the cached contract set stays as loaded. */
const copy = (file: FileDescriptorProto) => clone(FileDescriptorProtoSchema, file);

let contracts: Schema;
/** The contracts plus the fixture, whose describe.v1.QueueService clashes with gateway.v1.QueueService. */
let combined: Schema;
let fixture: Schema;
let tmp: string;

beforeAll(async () => {
  const set = await loadContractSet();
  contracts = buildSchema(set.files.map(copy));

  tmp = await mkdtemp(path.join(os.tmpdir(), 'tacos-describe-'));
  const out = path.join(tmp, 'fixture.binpb');
  const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
  await execa(process.execPath, [
    buf,
    'build',
    FIXTURES,
    ...FIXTURE_FILES.flatMap((file) => ['--path', path.join(FIXTURES, file)]),
    '-o',
    out,
  ]);
  const compiled = fromBinary(FileDescriptorSetSchema, new Uint8Array(await readFile(out)));
  fixture = buildSchema(compiled.file.map(copy));
  combined = buildSchema(
    [...set.files, ...compiled.file.filter((file) => FIXTURE_FILES.includes(file.name))].map(copy),
  );
});

afterAll(async () => {
  if (tmp) await rm(tmp, {recursive: true, force: true});
});

/** Runs `fn` and returns the TacosError it throws. */
function usageFailure(fn: () => unknown): TacosError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TacosError);
    expect((error as TacosError).exitCode).toBe(2);
    return error as TacosError;
  }
  throw new Error('expected a usage error');
}

const message = (schema: Schema, name: string): DescMessage => {
  const desc = schema.registry.getMessage(name);
  if (!desc) throw new Error(`no message ${name}`);
  return desc;
};

describe('listServices', () => {
  it('prints full service names, sorted as grpcurl list does', () => {
    expect(listServices(contracts)).toEqual([
      'gateway.v1.GatewayService',
      'gateway.v1.QueueService',
      'gateway.v1.WebSocketService',
      'grpc.health.v1.Health',
      'payment.v1.PaymentService',
      'reservation.v1.InventoryService',
      'reservation.v1.ReservationService',
    ]);
  });
});

describe('listMethods', () => {
  it('lists methods in declaration order with their streaming kind, by full or short service name', () => {
    const lines = listMethods(contracts, 'gateway.v1.WebSocketService');
    expect(lines.map((line) => line.split(/\s{2,}/))).toEqual([
      ['gateway.v1.WebSocketService.StreamQueueUpdates', 'server streaming'],
      ['gateway.v1.WebSocketService.StreamReservationUpdates', 'server streaming'],
      ['gateway.v1.WebSocketService.StreamPaymentUpdates', 'server streaming'],
      ['gateway.v1.WebSocketService.SendMessage', 'unary'],
    ]);
    expect(listMethods(contracts, 'WebSocketService')).toEqual(lines);
    expect(listMethods(contracts, '.gateway.v1.WebSocketService')).toEqual(lines);
    // The kind column is aligned.
    expect(new Set(lines.map((line) => line.search(/ (server streaming|unary)$/)))).toHaveLength(1);
    expect(listMethods(contracts, 'QueueService')[0]).toMatch(/^gateway\.v1\.QueueService\.JoinQueue {2,}unary$/);
  });

  it('names client and bidi streaming', () => {
    expect(listMethods(fixture, 'describe.v1.QueueService').map((line) => line.replace(/\s+/g, ' '))).toEqual([
      'describe.v1.QueueService.Upload client streaming',
      'describe.v1.QueueService.Chat bidi streaming',
      'describe.v1.QueueService.Old unary',
    ]);
  });

  it('rejects an ambiguous short name with exit 2, listing the candidates', () => {
    const error = usageFailure(() => listMethods(combined, 'QueueService'));
    expect(error.message).toContain('ambiguous');
    expect(error.message).toContain('describe.v1.QueueService');
    expect(error.message).toContain('gateway.v1.QueueService');
    // The full name still resolves.
    expect(listMethods(combined, 'gateway.v1.QueueService')).toHaveLength(5);
  });

  it('rejects an unknown name with exit 2, the closest services first', () => {
    const error = usageFailure(() => listMethods(contracts, 'QueueServce'));
    expect(error.message).toContain('"QueueServce"');
    expect(error.hint).toMatch(/^Did you mean: gateway\.v1\.QueueService,/);
  });
});

describe('describeSymbol', () => {
  it('shows a message as proto source with its comments', () => {
    const text = describeSymbol(contracts, 'gateway.v1.JoinQueueRequest');
    expect(text).toBe(
      [
        'gateway.v1.JoinQueueRequest is a message:',
        '// Input of JoinQueue.',
        'message JoinQueueRequest {',
        '  // Event whose waiting room to join.',
        '  string event_id = 1;',
        '  string user_id = 2;',
        '  // Client session; a user joining twice from the same session gets the same token back.',
        '  string session_id = 3;',
        '  // Client details for abuse detection.',
        '  gateway.v1.QueueMetadata metadata = 4;',
        '}',
      ].join('\n'),
    );
  });

  it('prints map fields as map<K, V>, not their entry types', () => {
    const text = describeSymbol(contracts, 'QueueMetadata');
    expect(text).toContain('gateway.v1.QueueMetadata is a message:');
    expect(text).toContain(
      '  // Selected HTTP request headers, keyed by lower-case header name.\n  map<string, string> headers = 5;',
    );
    expect(text).not.toContain('HeadersEntry');
  });

  it('writes referenced types by full name', () => {
    const text = describeSymbol(contracts, 'gateway.v1.JoinQueueResponse');
    expect(text).toContain('  google.protobuf.Timestamp expires_at = 5;');
    expect(text).toContain('  common.v1.Error error = 6;');
    expect(text).toContain('  gateway.v1.QueueStatus status = 4;');
  });

  it('shows an enum with its values, numbers and comments', () => {
    const text = describeSymbol(contracts, 'QueueStatus');
    expect(text.split('\n').slice(0, 6)).toEqual([
      'gateway.v1.QueueStatus is an enum:',
      '// State of a waiting token.',
      'enum QueueStatus {',
      '  // Not set.',
      '  QUEUE_STATUS_UNSPECIFIED = 0;',
      '  // In the queue, not admitted yet.',
    ]);
    expect(text).toContain('  QUEUE_STATUS_ERROR = 5;\n}');
  });

  it('shows a service with its rpcs, streaming ones with returns ( stream', () => {
    const text = describeSymbol(contracts, 'WebSocketService');
    expect(text.split('\n').slice(0, 3)).toEqual([
      'gateway.v1.WebSocketService is a service:',
      '// Live updates pushed to clients (the gateway relays these streams over WebSocket),',
      '// plus one-off messages to a user or session.',
    ]);
    expect(text).toContain(
      '  // Streams position changes and system notices for a waiting token until it is admitted,\n' +
        '  // expires or the client goes away.\n' +
        '  rpc StreamQueueUpdates ( gateway.v1.StreamQueueUpdatesRequest ) returns ( stream gateway.v1.StreamQueueUpdatesResponse );',
    );
    expect(text).toContain(
      '  rpc SendMessage ( gateway.v1.SendMessageRequest ) returns ( gateway.v1.SendMessageResponse );',
    );
  });

  it('shows a method by any of the names users type', () => {
    const expected = [
      'gateway.v1.QueueService.JoinQueue is a method:',
      '// Puts a user in the waiting room of an event and hands back a waiting token.',
      'rpc JoinQueue ( gateway.v1.JoinQueueRequest ) returns ( gateway.v1.JoinQueueResponse );',
    ].join('\n');
    for (const name of [
      'gateway.v1.QueueService.JoinQueue',
      'gateway.v1.QueueService/JoinQueue',
      'QueueService.JoinQueue',
      'QueueService/JoinQueue',
      'JoinQueue',
    ]) {
      expect(describeSymbol(contracts, name)).toBe(expected);
    }
  });

  it('rejects ambiguous and unknown symbols with exit 2 and the candidates', () => {
    const ambiguous = usageFailure(() => describeSymbol(contracts, 'CreatePaymentIntentRequest'));
    expect(ambiguous.message).toBe(
      '"CreatePaymentIntentRequest" is ambiguous: gateway.v1.CreatePaymentIntentRequest, payment.v1.CreatePaymentIntentRequest.',
    );
    // A bare method name in two services is ambiguous too.
    expect(usageFailure(() => describeSymbol(contracts, 'GetPaymentStatus')).message).toContain(
      'payment.v1.PaymentService.GetPaymentStatus',
    );
    const unknown = usageFailure(() => describeSymbol(contracts, 'JoinQueueRequst'));
    expect(unknown.hint).toMatch(/^Did you mean: gateway\.v1\.JoinQueueRequest,/);
  });

  it('prints oneofs, proto3 optional, nested types, trailing comments and reserved numbers', () => {
    const text = describeSymbol(fixture, 'describe.v1.Tree');
    expect(text).toContain(
      '// A tree of nodes.\n// Second line of the comment.\nmessage Tree {\n  // Name of the node.\n  string name = 1;',
    );
    expect(text).toContain('  repeated describe.v1.Tree children = 2;');
    expect(text).toContain('  optional string label = 4; // Trailing comment of label.');
    expect(text).toContain(
      [
        '  // Pick one.',
        '  oneof choice {',
        '    string text = 5;',
        '    int32 count = 6;',
        '    describe.v1.Tree other = 7;',
        '  }',
      ].join('\n'),
    );
    expect(text).toContain('  map<int64, describe.v1.Tree.Color> colors = 9;');
    expect(text).toContain('  map<string, google.protobuf.Value> dynamic = 22;');
    expect(text).toContain('  string deprecated_name = 43 [deprecated = true];');
    expect(text).toContain('  reserved 20, 30 to 40;\n  reserved "old_name";');
    expect(text).toContain(
      '  // Something nested that points back up.\n  message Nested {\n    describe.v1.Tree back = 1;',
    );
    expect(text).toContain(
      '  enum Color {\n    // No color.\n    COLOR_UNSPECIFIED = 0;\n    COLOR_RED = 1; // Trailing comment of red.\n  }',
    );
    // The synthetic oneof of a proto3 optional field is not shown, nor are map entry types.
    expect(text).not.toContain('_label');
    expect(text).not.toMatch(/Entry/);
    expect(text.endsWith('\n  }\n}')).toBe(true);
  });

  it('prints client and bidi streaming, deprecated rpcs and a nested enum by its short name', () => {
    const text = describeSymbol(fixture, 'describe.v1.QueueService');
    expect(text).toContain(
      '  // Sends many, gets one.\n  rpc Upload ( stream describe.v1.Tree ) returns ( describe.v1.Tree );',
    );
    expect(text).toContain('  rpc Chat ( stream describe.v1.Tree ) returns ( stream describe.v1.Tree );');
    expect(text).toContain(
      '  rpc Old ( describe.v1.Tree ) returns ( describe.v1.Tree ) {\n    option deprecated = true;\n  }',
    );
    expect(describeSymbol(fixture, 'Tree.Color').split('\n')[0]).toBe('describe.v1.Tree.Color is an enum:');
    expect(describeSymbol(fixture, 'Level')).toBe(
      [
        'describe.v1.Level is an enum:',
        '// Aliases share numbers.',
        'enum Level {',
        '  option allow_alias = true;',
        '  LEVEL_UNSPECIFIED = 0;',
        '  LEVEL_LOW = 1;',
        '  LEVEL_MINIMUM = 1;',
        '  reserved 5 to 9;',
        '}',
      ].join('\n'),
    );
  });

  it('spells out proto2 labels and defaults', () => {
    expect(describeSymbol(fixture, 'describe.legacy.Legacy')).toBe(
      [
        'describe.legacy.Legacy is a message:',
        'message Legacy {',
        '  required string id = 1 [default = "none"];',
        '  optional int32 size = 2 [default = 7];',
        '  repeated int32 sizes = 3;',
        '  optional bytes raw = 4;',
        '}',
      ].join('\n'),
    );
  });

  it('prints no comments when the server sent no source info', async () => {
    const set = await loadContractSet();
    const stripped = buildSchema(
      set.files.map((file) => {
        const bare = copy(file);
        bare.sourceCodeInfo = undefined;
        return bare;
      }),
    );
    expect(describeSymbol(stripped, 'gateway.v1.JoinQueueRequest')).toBe(
      [
        'gateway.v1.JoinQueueRequest is a message:',
        'message JoinQueueRequest {',
        '  string event_id = 1;',
        '  string user_id = 2;',
        '  string session_id = 3;',
        '  gateway.v1.QueueMetadata metadata = 4;',
        '}',
      ].join('\n'),
    );
  });
});

describe('exampleRequest', () => {
  it('gives every field of payment.v1.CreatePaymentIntentRequest, which fromJson reads back', () => {
    const desc = message(contracts, 'payment.v1.CreatePaymentIntentRequest');
    const {json, notes} = exampleRequest(desc);
    expect(json).toEqual({
      reservationId: '',
      amount: {amount: '0', currency: ''},
      userId: '',
      method: 'PAYMENT_METHOD_UNSPECIFIED',
      scenario: 'PAYMENT_SCENARIO_UNSPECIFIED',
      webhookUrl: '',
      idempotencyKey: '',
      metadata: {
        source: '',
        userAgent: '',
        ipAddress: '',
        sessionId: '',
        scenario: 'PAYMENT_SCENARIO_UNSPECIFIED',
        tags: {key: ''},
      },
    });
    expect(() => fromJson(desc, json, {registry: contracts.registry})).not.toThrow();
    expect(notes).toContain(
      'method: PAYMENT_METHOD_UNSPECIFIED | PAYMENT_METHOD_CREDIT_CARD | PAYMENT_METHOD_DEBIT_CARD | PAYMENT_METHOD_BANK_TRANSFER | PAYMENT_METHOD_MOBILE_PAY | PAYMENT_METHOD_DIGITAL_WALLET',
    );
    expect(notes).toContain(
      'scenario: PAYMENT_SCENARIO_UNSPECIFIED | PAYMENT_SCENARIO_APPROVE | PAYMENT_SCENARIO_FAIL | PAYMENT_SCENARIO_DELAY | PAYMENT_SCENARIO_RANDOM | PAYMENT_SCENARIO_TIMEOUT',
    );
    expect(notes.find((note) => note.startsWith('metadata.scenario: '))).toBeDefined();
  });

  it('round-trips every request message of the contracts through fromJson', () => {
    for (const service of contracts.services) {
      for (const method of service.methods) {
        const {json} = exampleRequest(method.input);
        expect(() => fromJson(method.input, json, {registry: contracts.registry}), method.input.typeName).not.toThrow();
      }
    }
  });

  it('covers oneofs, recursion, maps, lists and well-known types, and fromJson reads it back', () => {
    const desc = message(fixture, 'describe.v1.Tree');
    const {json, notes} = exampleRequest(desc);
    expect(json).toEqual({
      name: '',
      children: [{}],
      parent: {},
      label: '',
      text: '',
      index: {key: {}},
      colors: {'0': 'COLOR_UNSPECIFIED'},
      nested: {back: {}, data: ''},
      at: '2026-01-01T00:00:00Z',
      ttl: '1s',
      attrs: {},
      value: null,
      list: [],
      any: {},
      big: '0',
      maybeText: '',
      mask: '',
      values: [null],
      dynamic: {key: null},
      u64: '0',
      s32: 0,
      f64: '0',
      ratio: 0,
      weight: 0,
      leaf: false,
      blob: '',
      palette: ['COLOR_UNSPECIFIED'],
      flags: {false: ''},
      deprecatedName: '',
    });
    expect(notes).toEqual([
      'oneof choice: text | count | other',
      'colors.*: COLOR_UNSPECIFIED | COLOR_RED',
      'palette[]: COLOR_UNSPECIFIED | COLOR_RED',
    ]);
    const parsed = fromJson(desc, json, {registry: fixture.registry});
    // Values the skeleton sets that are not proto3 defaults come back out.
    expect(toJson(desc, parsed, {registry: fixture.registry})).toMatchObject({
      at: '2026-01-01T00:00:00Z',
      ttl: '1s',
      text: '',
      label: '',
    });
  });

  it('fills a message that is not recursive at the top but recursive below, and proto2 fields', () => {
    const nested = exampleRequest(message(fixture, 'describe.v1.Tree.Nested'));
    // Tree is not an ancestor of Nested at the top, so it is expanded once; Nested inside it is then cut.
    expect(nested.json.back).toMatchObject({name: '', nested: {}, children: [{}]});
    expect(() =>
      fromJson(message(fixture, 'describe.v1.Tree.Nested'), nested.json, {registry: fixture.registry}),
    ).not.toThrow();
    const legacy = exampleRequest(message(fixture, 'describe.legacy.Legacy'));
    expect(legacy).toEqual({json: {id: '', size: 0, sizes: [0], raw: ''}, notes: []});
  });
});
