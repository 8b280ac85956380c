import {
  ScalarType,
  isFieldSet,
  type DescEnum,
  type DescEnumValue,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescOneof,
  type DescService,
  type JsonObject,
  type JsonValue,
} from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProtoSchema,
  type SourceCodeInfo_Location,
} from '@bufbuild/protobuf/wkt';
import {usageError} from '../errors.js';
import type {Schema} from './schema.js';
import {closestNames} from '../closest-names.js';
import {scalarZeroJson} from './json-zero.js';

/**
 * `tacos list` and `tacos describe`: what grpcurl's `list`, `describe` and `-msg-template` show,
 * computed from a resolved schema without touching the network.
 */

const METHOD_KINDS: Record<DescMethod['methodKind'], string> = {
  unary: 'unary',
  server_streaming: 'server streaming',
  client_streaming: 'client streaming',
  bidi_streaming: 'bidi streaming',
};

/** Service full names, sorted as `grpcurl list` prints them (the server's order is arbitrary). */
export function listServices(schema: Schema): string[] {
  return schema.services.map((service) => service.typeName).sort();
}

/**
 * A service's methods in declaration order (the author's order reads better than sorted), each
 * with its streaming kind in an aligned column. `service` may be a full or short name.
 */
export function listMethods(schema: Schema, service: string): string[] {
  const found = resolve(
    schema.services.map((desc) => ({name: desc.typeName, desc})),
    service,
    'service',
  );
  const names = found.methods.map((method) => `${found.typeName}.${method.name}`);
  const width = Math.max(0, ...names.map((name) => name.length));
  return found.methods.map((method, i) => `${names[i].padEnd(width)}  ${METHOD_KINDS[method.methodKind]}`);
}

type Described = DescService | DescMethod | DescMessage | DescEnum;

/**
 * A service, method, message or enum as proto source with its comments, like `grpcurl describe`.
 * Names may be full (`pkg.Svc.Method`, `pkg.Svc/Method`) or any unique suffix (`Svc.Method`, `Msg`).
 */
export function describeSymbol(schema: Schema, symbol: string): string {
  const desc = resolve(allSymbols(schema), symbol, 'symbol');
  const lines: string[] = [];
  switch (desc.kind) {
    case 'service':
      lines.push(`${desc.typeName} is a service:`);
      printService(desc, lines, '');
      break;
    case 'rpc':
      lines.push(`${desc.parent.typeName}.${desc.name} is a method:`);
      printMethod(desc, lines, '');
      break;
    case 'message':
      lines.push(`${desc.typeName} is a message:`);
      printMessage(desc, lines, '');
      break;
    case 'enum':
      lines.push(`${desc.typeName} is an enum:`);
      printEnum(desc, lines, '');
      break;
  }
  return lines.join('\n');
}

/**
 * Every symbol `describe` can show: the registry's, not only the listed services', so request
 * and well-known types can be described too. Map entries are left out: nobody writes them.
 */
function allSymbols(schema: Schema): {name: string; desc: Described}[] {
  // Names are unique: the registry refuses duplicates.
  const symbols: {name: string; desc: Described}[] = [];
  const add = (name: string, desc: Described) => symbols.push({name, desc});
  const message = (desc: DescMessage) => {
    if (isMapEntry(desc)) return;
    add(desc.typeName, desc);
    for (const nested of desc.nestedMessages) message(nested);
    for (const nested of desc.nestedEnums) add(nested.typeName, nested);
  };
  for (const file of schema.registry.files) {
    for (const service of file.services) {
      add(service.typeName, service);
      for (const method of service.methods) add(`${service.typeName}.${method.name}`, method);
    }
    for (const desc of file.messages) message(desc);
    for (const desc of file.enums) add(desc.typeName, desc);
  }
  return symbols;
}

/**
 * The one entry named `wanted`: an exact full name first, else a unique suffix on a dot boundary
 * (grpc_cli's rule). Unknown and ambiguous names are usage errors (exit 2) listing candidates.
 */
function resolve<T>(entries: {name: string; desc: T}[], wanted: string, what: string): T {
  const name = wanted.trim().replace(/^\./, '').replace('/', '.');
  const exact = entries.find((entry) => entry.name === name);
  if (exact) return exact.desc;
  const matches = name ? entries.filter((entry) => entry.name.endsWith(`.${name}`)) : [];
  if (matches.length === 1) return matches[0].desc;
  if (matches.length > 1) {
    const names = matches.map((entry) => entry.name).sort();
    throw usageError(`"${wanted}" is ambiguous: ${names.join(', ')}.`, `Give the full name, e.g. ${names[0]}.`);
  }
  const closest = closestNames(
    entries.map((entry) => entry.name),
    name,
  );
  throw usageError(
    `No ${what} "${wanted}".`,
    closest.length
      ? `Did you mean: ${closest.join(', ')}? (tacos list shows all services)`
      : 'The server lists no services.',
  );
}

// ---------------------------------------------------------------------------------------------
// Proto source printing

const INDENT = '  ';

function printService(desc: DescService, lines: string[], indent: string): void {
  const comments = commentsOf(desc);
  pushComment(lines, indent, comments.leading);
  lines.push(`${indent}service ${desc.name} {`);
  // protoc attaches a block's trailing comment to the line after its opening brace.
  pushComment(lines, indent + INDENT, comments.trailing);
  for (const method of desc.methods) printMethod(method, lines, indent + INDENT);
  lines.push(`${indent}}`);
}

function printMethod(desc: DescMethod, lines: string[], indent: string): void {
  const clientStream = desc.methodKind === 'client_streaming' || desc.methodKind === 'bidi_streaming';
  const serverStream = desc.methodKind === 'server_streaming' || desc.methodKind === 'bidi_streaming';
  const input = `${clientStream ? 'stream ' : ''}${desc.input.typeName}`;
  const output = `${serverStream ? 'stream ' : ''}${desc.output.typeName}`;
  const body = desc.deprecated ? ` {\n${indent}${INDENT}option deprecated = true;\n${indent}}` : ';';
  pushElement(lines, indent, `rpc ${desc.name} ( ${input} ) returns ( ${output} )${body}`, commentsOf(desc));
}

function printMessage(desc: DescMessage, lines: string[], indent: string): void {
  const comments = commentsOf(desc);
  const inner = indent + INDENT;
  pushComment(lines, indent, comments.leading);
  lines.push(`${indent}message ${desc.name} {`);
  pushComment(lines, inner, comments.trailing);
  if (desc.deprecated) lines.push(`${inner}option deprecated = true;`);
  for (const member of desc.members) {
    if (member.kind === 'oneof') printOneof(member, lines, inner);
    else printField(member, lines, inner);
  }
  // Message reserved ranges are end-exclusive.
  printReserved(
    desc.proto.reservedRange.map((range) => [range.start, range.end - 1]),
    desc.proto.reservedName,
    536_870_911,
    lines,
    inner,
  );
  for (const nested of desc.nestedMessages) {
    if (isMapEntry(nested)) continue;
    lines.push('');
    printMessage(nested, lines, inner);
  }
  for (const nested of desc.nestedEnums) {
    lines.push('');
    printEnum(nested, lines, inner);
  }
  lines.push(`${indent}}`);
}

function printOneof(desc: DescOneof, lines: string[], indent: string): void {
  const comments = commentsOf(desc);
  pushComment(lines, indent, comments.leading);
  lines.push(`${indent}oneof ${desc.name} {`);
  pushComment(lines, indent + INDENT, comments.trailing);
  for (const field of desc.fields) printField(field, lines, indent + INDENT);
  lines.push(`${indent}}`);
}

function printField(desc: DescField, lines: string[], indent: string): void {
  const options: string[] = [];
  const proto = desc.proto;
  // Only proto2 has explicit defaults; isFieldSet tells `[default = ""]` from none.
  if (isFieldSet(proto, FieldDescriptorProtoSchema.field.defaultValue)) {
    const value = proto.defaultValue;
    // String defaults are stored unescaped, bytes defaults already C-escaped.
    const text =
      desc.fieldKind === 'scalar' && desc.scalar === ScalarType.STRING
        ? JSON.stringify(value)
        : desc.fieldKind === 'scalar' && desc.scalar === ScalarType.BYTES
          ? `"${value}"`
          : value;
    options.push(`default = ${text}`);
  }
  if (desc.deprecated) options.push('deprecated = true');
  const suffix = options.length ? ` [${options.join(', ')}]` : '';
  pushElement(
    lines,
    indent,
    `${fieldLabel(desc)}${fieldType(desc)} ${desc.name} = ${desc.number}${suffix};`,
    commentsOf(desc),
  );
}

function fieldLabel(desc: DescField): string {
  if (desc.fieldKind === 'list') return 'repeated ';
  if (desc.fieldKind === 'map' || desc.oneof) return '';
  const syntax = desc.parent.file.proto.syntax;
  if (syntax === 'proto3') return desc.proto.proto3Optional ? 'optional ' : '';
  if (syntax === 'editions') return '';
  // proto2 ("" when the file does not say) spells out every label.
  return desc.proto.label === FieldDescriptorProto_Label.REQUIRED ? 'required ' : 'optional ';
}

function fieldType(desc: DescField): string {
  switch (desc.fieldKind) {
    case 'map': {
      const value =
        desc.mapKind === 'scalar'
          ? scalarName(desc.scalar)
          : desc.mapKind === 'enum'
            ? desc.enum.typeName
            : desc.message.typeName;
      return `map<${scalarName(desc.mapKey)}, ${value}>`;
    }
    case 'list':
      return desc.listKind === 'scalar'
        ? scalarName(desc.scalar)
        : desc.listKind === 'enum'
          ? desc.enum.typeName
          : desc.message.typeName;
    case 'scalar':
      return scalarName(desc.scalar);
    case 'enum':
      return desc.enum.typeName;
    case 'message':
      return desc.message.typeName;
  }
}

const scalarName = (scalar: ScalarType) => ScalarType[scalar].toLowerCase();

function printEnum(desc: DescEnum, lines: string[], indent: string): void {
  const comments = commentsOf(desc);
  const inner = indent + INDENT;
  pushComment(lines, indent, comments.leading);
  lines.push(`${indent}enum ${desc.name} {`);
  pushComment(lines, inner, comments.trailing);
  if (desc.proto.options?.allowAlias) lines.push(`${inner}option allow_alias = true;`);
  for (const value of desc.values) {
    const suffix = value.deprecated ? ' [deprecated = true]' : '';
    pushElement(lines, inner, `${value.name} = ${value.number}${suffix};`, commentsOf(value));
  }
  // Enum reserved ranges are end-inclusive.
  printReserved(
    desc.proto.reservedRange.map((range) => [range.start, range.end]),
    desc.proto.reservedName,
    2_147_483_647,
    lines,
    inner,
  );
  lines.push(`${indent}}`);
}

/** `max` is the highest field number (536870911) or enum value (2147483647), as protoc writes it. */
function printReserved(ranges: number[][], names: string[], max: number, lines: string[], indent: string): void {
  if (ranges.length) {
    const text = ranges.map(([start, end]) => (start === end ? `${start}` : `${start} to ${end >= max ? 'max' : end}`));
    lines.push(`${indent}reserved ${text.join(', ')};`);
  }
  if (names.length) lines.push(`${indent}reserved ${names.map((name) => JSON.stringify(name)).join(', ')};`);
}

/** A one-line element: leading comment above, a one-line trailing comment after it on the same line. */
function pushElement(lines: string[], indent: string, text: string, comments: Comments): void {
  pushComment(lines, indent, comments.leading);
  const trailing = comments.trailing?.replace(/\n$/, '');
  if (trailing !== undefined && !trailing.includes('\n')) {
    lines.push(`${indent}${text} //${trailing}`);
    return;
  }
  lines.push(...`${indent}${text}`.split('\n'));
  pushComment(lines, indent, trailing);
}

function pushComment(lines: string[], indent: string, comment: string | undefined): void {
  if (comment === undefined) return;
  // protoc keeps the text after `//` (leading space included) and ends it with a newline.
  for (const line of comment.replace(/\n$/, '').split('\n')) lines.push(`${indent}//${line.trimEnd()}`);
}

// ---------------------------------------------------------------------------------------------
// Comments from source_code_info

interface Comments {
  leading?: string;
  trailing?: string;
}

const locationsByFile = new WeakMap<DescFile, Map<string, SourceCodeInfo_Location>>();

/** The comments protoc recorded for an element; none when the file came without source info (most reflection servers strip it). */
function commentsOf(
  desc: DescService | DescMethod | DescMessage | DescEnum | DescEnumValue | DescField | DescOneof,
): Comments {
  const file = fileOf(desc);
  let locations = locationsByFile.get(file);
  if (!locations) {
    locations = new Map();
    for (const location of file.proto.sourceCodeInfo?.location ?? []) {
      const key = location.path.join('.');
      // Several spans can share a path; the one with comments is the one we want.
      const stored = locations.get(key);
      if (!stored || (!hasComments(stored) && hasComments(location))) locations.set(key, location);
    }
    locationsByFile.set(file, locations);
  }
  const location = locations.get(sourcePath(desc).join('.'));
  return {leading: location?.leadingComments || undefined, trailing: location?.trailingComments || undefined};
}

const hasComments = (location: SourceCodeInfo_Location) =>
  Boolean(location.leadingComments || location.trailingComments);

function fileOf(
  desc: DescService | DescMethod | DescMessage | DescEnum | DescEnumValue | DescField | DescOneof,
): DescFile {
  switch (desc.kind) {
    case 'rpc':
      return desc.parent.file;
    case 'enum_value':
    case 'field':
    case 'oneof':
      return fileOf(desc.parent);
    default:
      return desc.file;
  }
}

/**
 * An element's path in its FileDescriptorProto, as SourceCodeInfo.Location.path spells it: the
 * field numbers of descriptor.proto (message_type 4, enum_type 5, service 6; nested_type 3,
 * field 2, oneof_decl 8, method 2, enum value 2) and indexes into those lists. Indexes are
 * looked up by name in the proto lists, which also hold the map entries the Desc lists may skip.
 */
function sourcePath(
  desc: DescService | DescMethod | DescMessage | DescEnum | DescEnumValue | DescField | DescOneof,
): number[] {
  const index = (list: {name?: string}[], name: string) => list.findIndex((item) => item.name === name);
  switch (desc.kind) {
    case 'service':
      return [6, index(desc.file.proto.service, desc.name)];
    case 'rpc':
      return [...sourcePath(desc.parent), 2, index(desc.parent.proto.method, desc.name)];
    case 'message':
      return desc.parent
        ? [...sourcePath(desc.parent), 3, index(desc.parent.proto.nestedType, desc.name)]
        : [4, index(desc.file.proto.messageType, desc.name)];
    case 'enum':
      return desc.parent
        ? [...sourcePath(desc.parent), 4, index(desc.parent.proto.enumType, desc.name)]
        : [5, index(desc.file.proto.enumType, desc.name)];
    case 'enum_value':
      return [...sourcePath(desc.parent), 2, index(desc.parent.proto.value, desc.name)];
    case 'field':
      return [...sourcePath(desc.parent), 2, index(desc.parent.proto.field, desc.name)];
    case 'oneof':
      return [...sourcePath(desc.parent), 8, index(desc.parent.proto.oneofDecl, desc.name)];
  }
}

const isMapEntry = (desc: DescMessage) => desc.proto.options?.mapEntry === true;

// ---------------------------------------------------------------------------------------------
// Example requests

/** A request skeleton to edit and send back with `-d @file`, and what the skeleton cannot show. */
export interface ExampleRequest {
  json: JsonObject;
  /** Each enum field's values and each oneof's other cases, by JSON path (`[]` a list item, `.*` a map value). */
  notes: string[];
}

/** Well-known types whose proto3 JSON is not an object of their fields. */
const WELL_KNOWN_JSON: Record<string, JsonValue> = {
  'google.protobuf.Timestamp': '2026-01-01T00:00:00Z',
  'google.protobuf.Duration': '1s',
  'google.protobuf.FieldMask': '',
  'google.protobuf.Struct': {},
  'google.protobuf.Value': null,
  'google.protobuf.ListValue': [],
  'google.protobuf.Any': {},
  'google.protobuf.Empty': {},
  'google.protobuf.DoubleValue': 0,
  'google.protobuf.FloatValue': 0,
  'google.protobuf.Int32Value': 0,
  'google.protobuf.UInt32Value': 0,
  'google.protobuf.Int64Value': '0',
  'google.protobuf.UInt64Value': '0',
  'google.protobuf.BoolValue': false,
  'google.protobuf.StringValue': '',
  'google.protobuf.BytesValue': '',
};

/**
 * A proto3 JSON skeleton of `desc` with every field (JSON names, zero values, enums by their
 * first name), which fromJson reads back. Oneofs show their first case only, as JSON may set
 * just one. A message type already among its own ancestors becomes `{}`, so recursion ends.
 * The top-level message is always an object of its fields, even for a well-known type.
 */
export function exampleRequest(desc: DescMessage): ExampleRequest {
  const notes: string[] = [];
  const json = messageExample(desc, '', new Set([desc.typeName]), notes);
  return {json, notes};
}

function messageExample(desc: DescMessage, path: string, ancestors: Set<string>, notes: string[]): JsonObject {
  const json: JsonObject = {};
  for (const member of desc.members) {
    if (member.kind === 'oneof') {
      if (member.fields.length > 1)
        notes.push(`oneof ${path}${member.name}: ${member.fields.map((field) => field.jsonName).join(' | ')}`);
      const first = member.fields[0];
      if (first) json[first.jsonName] = fieldExample(first, `${path}${first.jsonName}`, ancestors, notes);
    } else {
      json[member.jsonName] = fieldExample(member, `${path}${member.jsonName}`, ancestors, notes);
    }
  }
  return json;
}

function fieldExample(field: DescField, path: string, ancestors: Set<string>, notes: string[]): JsonValue {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarZeroJson(field.scalar);
    case 'enum':
      return enumExample(field.enum, path, notes);
    case 'message':
      return messageValue(field.message, path, ancestors, notes);
    case 'list': {
      const item = `${path}[]`;
      if (field.listKind === 'scalar') return [scalarZeroJson(field.scalar)];
      if (field.listKind === 'enum') return [enumExample(field.enum, item, notes)];
      return [messageValue(field.message, item, ancestors, notes)];
    }
    case 'map': {
      const value = `${path}.*`;
      const example =
        field.mapKind === 'scalar'
          ? scalarZeroJson(field.scalar)
          : field.mapKind === 'enum'
            ? enumExample(field.enum, value, notes)
            : messageValue(field.message, value, ancestors, notes);
      return {[mapKeyExample(field.mapKey)]: example};
    }
  }
}

function messageValue(desc: DescMessage, path: string, ancestors: Set<string>, notes: string[]): JsonValue {
  if (desc.typeName in WELL_KNOWN_JSON) return structuredClone(WELL_KNOWN_JSON[desc.typeName]);
  if (ancestors.has(desc.typeName)) return {};
  return messageExample(desc, `${path}.`, new Set([...ancestors, desc.typeName]), notes);
}

function enumExample(desc: DescEnum, path: string, notes: string[]): JsonValue {
  // NullValue's only JSON form is null; there is nothing to choose.
  if (desc.typeName === 'google.protobuf.NullValue') return null;
  notes.push(`${path}: ${desc.values.map((value) => value.name).join(' | ')}`);
  return desc.values[0].name;
}

/** JSON object keys are strings: map keys are written as their scalar in text. */
function mapKeyExample(scalar: ScalarType): string {
  if (scalar === ScalarType.STRING) return 'key';
  if (scalar === ScalarType.BOOL) return 'false';
  return '0';
}
