/**
 * Wire contract test: every package, service, rpc, message, field and enum value that
 * test/fixtures/contracts/WIRE.md (the wire contract, copied into the repo so a clone stands on its own) lists must be present, identical, in the descriptors our own
 * proto/ compiles to (the same FileDescriptorSet the servers and reflection use).
 *
 * WIRE.md is parsed strictly: a list item or service heading this parser does not understand
 * fails the test instead of being silently skipped, so a format change cannot make it vacuous.
 */
import {existsSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {ScalarType, type DescField, type DescMessage, type FileRegistry} from '@bufbuild/protobuf';
import type {FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import {beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WIRE_PATH = path.resolve(repoRoot, 'test', 'fixtures', 'contracts', 'WIRE.md');

// ---------------------------------------------------------------------------------------------
// WIRE.md parser

interface WireField {
  number: number;
  repeated: boolean;
  /** A scalar name (int32, string ...), a fully qualified type name, or map<k,v> without spaces. */
  type: string;
  name: string;
}

interface WireMessage {
  name: string;
  line: number;
  fields: WireField[];
}

interface WireEnum {
  name: string;
  line: number;
  values: {name: string; number: number}[];
}

interface WireService {
  name: string;
  line: number;
  file: string;
}

interface WireRpc {
  service: string;
  method: string;
  line: number;
  input: string;
  output: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

interface Wire {
  found: boolean;
  messages: WireMessage[];
  enums: WireEnum[];
  services: WireService[];
  rpcs: WireRpc[];
  packages: string[];
  /** Lines that look like contract items but could not be parsed, as "line N: text (why)". */
  unparsed: string[];
}

const IDENT = String.raw`[A-Za-z_][\w.]*`;
const FIELD_RE = new RegExp(
  String.raw`^(\d+)\s+(?:(repeated)\s+)?(map\s*<\s*${IDENT}\s*,\s*${IDENT}\s*>|${IDENT})\s+([A-Za-z_]\w*)$`,
);
const ENUM_VALUE_RE = /^([A-Za-z_]\w*)\s*=\s*(-?\d+)$/;
const MESSAGE_RE = new RegExp(String.raw`^message\s+(${IDENT})\s*(?::\s*(.*))?$`);
const ENUM_RE = new RegExp(String.raw`^enum\s+(${IDENT})\s*(?::\s*(.*))?$`);
const RPC_RE = new RegExp(
  String.raw`^rpc\s+([A-Za-z_]\w*)\s*\(\s*(stream\s+)?(${IDENT})\s*\)\s*returns\s*\(\s*(stream\s+)?(${IDENT})\s*\)\s*;?$`,
);
const SERVICE_HEADING_RE = new RegExp(String.raw`^#+\s*service\s+(${IDENT})\s*\(\s*([^\s()]+\.proto)\s*\)\s*$`);

/** The package of a fully qualified name: its leading lower-case segments (common.v1.Money -> common.v1). */
function packageOf(typeName: string): string {
  const segments = typeName.split('.');
  const firstType = segments.findIndex((segment) => /^[A-Z]/.test(segment));
  return segments.slice(0, firstType === -1 ? segments.length - 1 : firstType).join('.');
}

function qualify(typeName: string, pkg: string): string {
  return typeName.includes('.') ? typeName : `${pkg}.${typeName}`;
}

function parseWire(text: string): Omit<Wire, 'found'> {
  const wire: Omit<Wire, 'found'> = {messages: [], enums: [], services: [], rpcs: [], packages: [], unparsed: []};
  let service: WireService | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replaceAll('`', '').trim();
    const bad = (why: string) => wire.unparsed.push(`line ${lineNo}: ${line} (${why})`);

    if (line.startsWith('#')) {
      service = undefined; // any heading ends the previous service section
      const heading = SERVICE_HEADING_RE.exec(line);
      if (heading) {
        service = {name: heading[1], file: heading[2], line: lineNo};
        wire.services.push(service);
      } else if (/^#+\s*service\b/i.test(line)) {
        bad('service heading not in the form "#### service pkg.Name (path/file.proto)"');
      }
      return;
    }

    const item = /^[-*+]\s+(.*)$/.exec(line);
    if (!item) return; // prose
    const body = item[1].trim();

    if (/^message\b/.test(body)) {
      const match = MESSAGE_RE.exec(body);
      if (!match) return bad('message line not understood');
      const message: WireMessage = {name: match[1], line: lineNo, fields: []};
      for (const part of (match[2] ?? '')
        .split(';')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const field = FIELD_RE.exec(part);
        if (!field) {
          bad(`field "${part}" not in the form "N [repeated] type name"`);
          continue;
        }
        message.fields.push({
          number: Number(field[1]),
          repeated: field[2] !== undefined,
          type: field[3].replaceAll(/\s+/g, ''),
          name: field[4],
        });
      }
      if (message.fields.length === 0) bad('message without fields');
      wire.messages.push(message);
      return;
    }

    if (/^enum\b/.test(body)) {
      const match = ENUM_RE.exec(body);
      if (!match) return bad('enum line not understood');
      const enumeration: WireEnum = {name: match[1], line: lineNo, values: []};
      for (const part of (match[2] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const value = ENUM_VALUE_RE.exec(part);
        if (!value) {
          bad(`enum value "${part}" not in the form "NAME=N"`);
          continue;
        }
        enumeration.values.push({name: value[1], number: Number(value[2])});
      }
      if (enumeration.values.length === 0) bad('enum without values');
      wire.enums.push(enumeration);
      return;
    }

    if (/^rpc\b/.test(body)) {
      const match = RPC_RE.exec(body);
      if (!match) return bad('rpc line not in the form "rpc M(In) returns ([stream] Out)"');
      if (!service) return bad('rpc outside a "#### service" section');
      const pkg = packageOf(service.name);
      wire.rpcs.push({
        service: service.name,
        method: match[1],
        line: lineNo,
        clientStreaming: match[2] !== undefined,
        input: qualify(match[3], pkg),
        serverStreaming: match[4] !== undefined,
        output: qualify(match[5], pkg),
      });
      return;
    }

    bad('list item is not a message, enum or rpc');
  });

  const names = [...wire.messages, ...wire.enums, ...wire.services].map((symbol) => symbol.name);
  wire.packages = [...new Set(names.map(packageOf))].sort();
  return wire;
}

function readWire(): Wire {
  if (!existsSync(WIRE_PATH)) {
    return {found: false, messages: [], enums: [], services: [], rpcs: [], packages: [], unparsed: []};
  }
  return {found: true, ...parseWire(readFileSync(WIRE_PATH, 'utf8'))};
}

const wire = readWire();

// ---------------------------------------------------------------------------------------------
// Rendering our descriptors in WIRE.md's notation, so mismatches read as a line-by-line diff

function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase(); // INT32 -> int32, the proto keyword
}

function renderType(field: DescField): string {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarName(field.scalar);
    case 'enum':
      return field.enum.typeName;
    case 'message':
      return field.message.typeName;
    case 'list': {
      const element =
        field.listKind === 'scalar'
          ? scalarName(field.scalar)
          : field.listKind === 'enum'
            ? field.enum.typeName
            : field.message.typeName;
      return `repeated ${element}`;
    }
    case 'map': {
      const value =
        field.mapKind === 'scalar'
          ? scalarName(field.scalar)
          : field.mapKind === 'enum'
            ? field.enum.typeName
            : field.message.typeName;
      return `map<${scalarName(field.mapKey)},${value}>`;
    }
  }
}

function renderWireField(field: WireField): string {
  return `${field.number} ${field.repeated ? 'repeated ' : ''}${field.type} ${field.name}`;
}

function renderOurField(message: DescMessage, wanted: WireField): string {
  const field = message.fields.find((candidate) => candidate.number === wanted.number);
  if (field) return `${field.number} ${renderType(field)} ${field.name}`;
  const moved = message.fields.find((candidate) => candidate.name === wanted.name);
  return `${wanted.number} <no field with this number>${moved ? ` (${wanted.name} is field ${moved.number})` : ''}`;
}

function renderRpc(method: string, input: string, output: string, clientStreaming: boolean, serverStreaming: boolean) {
  return `rpc ${method}(${clientStreaming ? 'stream ' : ''}${input}) returns (${serverStreaming ? 'stream ' : ''}${output})`;
}

// ---------------------------------------------------------------------------------------------

let registry: FileRegistry;
let files: FileDescriptorProto[];

beforeAll(async () => {
  ({registry, files} = await loadContractSet());
});

describe(`wire contract (${path.relative(repoRoot, WIRE_PATH)})`, () => {
  it('WIRE.md is present and fully understood', () => {
    if (!wire.found) {
      expect.fail(`The wire contract is missing: looked for ${WIRE_PATH}`);
    }
    expect(wire.unparsed, `lines of ${WIRE_PATH} this test could not parse`).toEqual([]);
  });

  it('found a plausible number of contract items (guards against a vacuous parse)', () => {
    expect(wire.found, `looked for ${WIRE_PATH}`).toBe(true);
    expect(wire.messages.length + wire.enums.length).toBeGreaterThan(100);
    expect(wire.messages.length).toBeGreaterThan(80);
    expect(wire.enums.length).toBeGreaterThan(15);
    expect(wire.services.length).toBeGreaterThanOrEqual(6);
    expect(wire.rpcs.length).toBeGreaterThan(30);
    expect(wire.messages.reduce((sum, message) => sum + message.fields.length, 0)).toBeGreaterThan(300);
    expect(wire.packages).toEqual(expect.arrayContaining(['common.v1', 'gateway.v1', 'payment.v1', 'reservation.v1']));
  });

  it.each(wire.packages)('package %s', (pkg) => {
    const ours = files.filter((file) => file.package === pkg).map((file) => file.name);
    expect(ours, `no .proto file declares package ${pkg}`).not.toEqual([]);
  });

  it.each(wire.services.map((service) => [`${service.name} in ${service.file}`, service] as const))(
    'service %s',
    (_title, {name, file, line}) => {
      const service = registry.getService(name);
      expect(service, `service ${name} (WIRE.md line ${line}) is not in our descriptors`).toBeDefined();
      expect(`${service!.file.name}.proto`, `file that declares service ${name}`).toBe(file);
    },
  );

  it.each(wire.rpcs.map((rpc) => [`${rpc.service}/${rpc.method}`, rpc] as const))(
    'rpc %s',
    (_title, {service: serviceName, method: methodName, input, output, clientStreaming, serverStreaming, line}) => {
      const service = registry.getService(serviceName);
      expect(service, `service ${serviceName} is not in our descriptors`).toBeDefined();
      const method = service!.methods.find((candidate) => candidate.name === methodName);
      expect(method, `rpc ${serviceName}/${methodName} (WIRE.md line ${line}) is not in our descriptors`).toBeDefined();
      const ours = renderRpc(
        method!.name,
        method!.input.typeName,
        method!.output.typeName,
        method!.methodKind === 'client_streaming' || method!.methodKind === 'bidi_streaming',
        method!.methodKind === 'server_streaming' || method!.methodKind === 'bidi_streaming',
      );
      expect(ours, `rpc ${serviceName}/${methodName}`).toBe(
        renderRpc(methodName, input, output, clientStreaming, serverStreaming),
      );
    },
  );

  it.each(wire.messages.map((message) => [message.name, message] as const))(
    'message %s',
    (_title, {name, fields, line}) => {
      const message = registry.getMessage(name);
      expect(message, `message ${name} (WIRE.md line ${line}) is not in our descriptors`).toBeDefined();
      const ours = fields.map((field) => renderOurField(message!, field));
      expect(ours, `fields of message ${name} (ours vs WIRE.md line ${line})`).toEqual(fields.map(renderWireField));
      // A field name must not have moved to another number either.
      const byName = fields.map((field) => {
        const number = message!.fields.find((candidate) => candidate.name === field.name)?.number;
        return `${field.name}=${number ?? '<missing>'}`;
      });
      expect(byName, `field numbers of message ${name} by name`).toEqual(
        fields.map((field) => `${field.name}=${field.number}`),
      );
    },
  );

  it.each(wire.enums.map((enumeration) => [enumeration.name, enumeration] as const))(
    'enum %s',
    (_title, {name, values, line}) => {
      const enumeration = registry.getEnum(name);
      expect(enumeration, `enum ${name} (WIRE.md line ${line}) is not in our descriptors`).toBeDefined();
      const ours = values.map((value) => {
        const found = enumeration!.values.find((candidate) => candidate.name === value.name);
        return `${value.name}=${found?.number ?? '<missing>'}`;
      });
      expect(ours, `values of enum ${name} (ours vs WIRE.md line ${line})`).toEqual(
        values.map((value) => `${value.name}=${value.number}`),
      );
    },
  );
});

describe('compiled descriptors', () => {
  it('include google.protobuf.Timestamp and keep original file names and real dependency lists', () => {
    const timestamp = registry.getMessage('google.protobuf.Timestamp');
    expect(timestamp, 'google.protobuf.Timestamp descriptor').toBeDefined();
    expect(`${timestamp!.file.name}.proto`).toBe('google/protobuf/timestamp.proto');

    const byName = new Map(files.map((file) => [file.name, file]));
    const expected: Record<string, string[]> = {
      'proto/common/v1/errors.proto': [],
      'proto/common/v1/types.proto': ['google/protobuf/timestamp.proto'],
      'proto/gateway/v1/queue.proto': ['google/protobuf/timestamp.proto', 'proto/common/v1/errors.proto'],
      'proto/gateway/v1/gateway.proto': [
        'google/protobuf/timestamp.proto',
        'proto/common/v1/errors.proto',
        'proto/common/v1/types.proto',
        'proto/payment/v1/payment.proto',
        'proto/reservation/v1/inventory.proto',
        'proto/reservation/v1/reservation.proto',
      ],
      'proto/gateway/v1/websocket.proto': [
        'google/protobuf/timestamp.proto',
        'proto/common/v1/errors.proto',
        'proto/payment/v1/payment.proto',
        'proto/reservation/v1/reservation.proto',
      ],
      'proto/reservation/v1/reservation.proto': [
        'google/protobuf/timestamp.proto',
        'proto/common/v1/errors.proto',
        'proto/common/v1/types.proto',
      ],
      'proto/reservation/v1/inventory.proto': [
        'google/protobuf/timestamp.proto',
        'proto/common/v1/errors.proto',
        'proto/common/v1/types.proto',
      ],
      'proto/payment/v1/payment.proto': [
        'google/protobuf/timestamp.proto',
        'proto/common/v1/errors.proto',
        'proto/common/v1/types.proto',
      ],
    };
    for (const [fileName, dependencies] of Object.entries(expected)) {
      const file = byName.get(fileName);
      expect(file, `${fileName} in the compiled set (have: ${[...byName.keys()].join(', ')})`).toBeDefined();
      expect(file!.dependency, `dependencies of ${fileName}`).toEqual(expect.arrayContaining(dependencies));
    }
    // Every dependency is in the set itself, as reflection clients need to resolve it.
    for (const file of files) {
      for (const dependency of file.dependency) {
        expect(byName.has(dependency), `${file.name} imports ${dependency}, which is not in the set`).toBe(true);
      }
    }
  });

  it('every type a file references is declared in that file or one of its direct dependencies', () => {
    const problems: string[] = [];
    for (const file of registry.files) {
      const visible = new Set([file.name, ...file.dependencies.map((dependency) => dependency.name)]);
      const check = (where: string, typeFile: string, typeName: string) => {
        if (!visible.has(typeFile))
          problems.push(`${file.name}.proto: ${where} uses ${typeName} from ${typeFile}.proto`);
      };
      const walk = (message: DescMessage) => {
        for (const field of message.fields) {
          const target = field.message ?? field.enum;
          if (target) check(`${message.typeName}.${field.name}`, target.file.name, target.typeName);
        }
        message.nestedMessages.forEach(walk);
      };
      file.messages.forEach(walk);
      for (const service of file.services) {
        for (const method of service.methods) {
          check(`${service.typeName}/${method.name}`, method.input.file.name, method.input.typeName);
          check(`${service.typeName}/${method.name}`, method.output.file.name, method.output.typeName);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('name map entry types the way protoc does (HeadersEntry with map_entry set)', () => {
    const metadata = files
      .find((file) => file.name === 'proto/gateway/v1/queue.proto')
      ?.messageType.find((message) => message.name === 'QueueMetadata');
    expect(metadata, 'gateway.v1.QueueMetadata in proto/gateway/v1/queue.proto').toBeDefined();
    const entry = metadata!.nestedType.find((nested) => nested.name === 'HeadersEntry');
    expect(entry?.options?.mapEntry, 'gateway.v1.QueueMetadata.HeadersEntry.map_entry').toBe(true);
  });
});
