import {create, createFileRegistry, toBinary, type DescService, type FileRegistry} from '@bufbuild/protobuf';
import {
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  FileDescriptorSetSchema,
  ServiceDescriptorProtoSchema,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import {TacosError, errorMessage} from '../errors.js';

/** A server's (or .proto files') schema, resolved: every type a method needs can be found. */
export interface Schema {
  registry: FileRegistry;
  services: DescService[];
}

const WELL_KNOWN = new Map(
  [
    file_google_protobuf_any,
    file_google_protobuf_api,
    file_google_protobuf_descriptor,
    file_google_protobuf_duration,
    file_google_protobuf_empty,
    file_google_protobuf_field_mask,
    file_google_protobuf_source_context,
    file_google_protobuf_struct,
    file_google_protobuf_timestamp,
    file_google_protobuf_type,
    file_google_protobuf_wrappers,
  ].map((file) => [file.proto.name, file.proto]),
);

/**
 * Resolves file descriptors into a schema, repairing what many servers send wrong: @grpc/reflection
 * fed by proto-loader serves files with no dependency list (grpc-node#2595) and map entries named
 * like `Headers` instead of `HeadersEntry`; well-known types may be left out altogether. The
 * repairs: missing well-known files added, dependencies rebuilt from the types each file uses, map
 * entries renamed. `serviceNames` keeps the services in the server's order.
 */
export function buildSchema(received: FileDescriptorProto[], serviceNames?: string[]): Schema {
  const files = new Map(received.map((file) => [file.name, file]));
  const definedIn = new Map<string, string>();
  const index = (file: FileDescriptorProto) => {
    const scope = file.package ? `.${file.package}` : '';
    const message = (desc: DescriptorProto, prefix: string) => {
      definedIn.set(`${prefix}.${desc.name}`, file.name);
      for (const nested of desc.nestedType) message(nested, `${prefix}.${desc.name}`);
      for (const nested of desc.enumType) definedIn.set(`${prefix}.${desc.name}.${nested.name}`, file.name);
    };
    for (const desc of file.messageType) message(desc, scope);
    for (const desc of file.enumType) definedIn.set(`${scope}.${desc.name}`, file.name);
    for (const desc of file.service) definedIn.set(`${scope}.${desc.name}`, file.name);
  };
  for (const file of files.values()) index(file);
  for (const file of files.values()) qualifyTypeNames(file, definedIn);
  definedIn.clear();
  for (const file of files.values()) {
    renameMapEntries(file);
    index(file);
  }
  // Add the well-known files that are used but were not sent.
  for (const file of [...files.values()]) {
    for (const name of [...file.dependency, ...referencedTypes(file).map((type) => wellKnownFileOf(type))]) {
      const known = name && WELL_KNOWN.get(name);
      if (
        known &&
        !files.has(known.name) &&
        !known.messageType.some((desc) => definedIn.has(`.google.protobuf.${desc.name}`))
      ) {
        files.set(known.name, known);
        index(known);
      }
    }
  }
  for (const file of files.values()) {
    const needed = new Set(file.dependency.filter((dependency) => files.has(dependency)));
    for (const type of referencedTypes(file)) {
      const home = definedIn.get(type);
      if (home && home !== file.name) needed.add(home);
    }
    file.dependency = [...needed];
  }
  try {
    const registry = createFileRegistry(create(FileDescriptorSetSchema, {file: dependencyOrder(files)}));
    const services: DescService[] = [];
    const names =
      serviceNames ??
      [...files.values()].flatMap((file) =>
        file.service.map((service) => (file.package ? `${file.package}.${service.name}` : service.name)),
      );
    for (const name of names) {
      const service = registry.getService(name);
      if (service) services.push(service);
    }
    return {registry, services};
  } catch (error) {
    throw new TacosError(`The server's schema cannot be resolved: ${errorMessage(error)}`, {
      hint: 'Give the schema with --proto FILE (and -I DIR for its imports) instead of reflection.',
      code: 'SCHEMA_UNRESOLVABLE',
    });
  }
}

/**
 * What differs between two schemas, one line per service, message or enum added, removed, or
 * changed (its descriptor differs), e.g. `added service pkg.v2.Svc`; none when they are the same.
 */
export function schemaChanges(before: Schema, after: Schema): string[] {
  const old = describedTypes(before);
  const now = describedTypes(after);
  const lines: string[] = [];
  for (const [name, type] of now) {
    const was = old.get(name);
    if (!was) lines.push(`added ${type.kind} ${name}`);
    else if (Buffer.compare(was.bytes, type.bytes) !== 0) lines.push(`changed ${type.kind} ${name}`);
  }
  for (const [name, type] of old) if (!now.has(name)) lines.push(`removed ${type.kind} ${name}`);
  return lines;
}

/** Services, messages and enums by full name, each with its descriptor's bytes (map entries left out). */
function describedTypes(schema: Schema): Map<string, {kind: string; bytes: Uint8Array}> {
  const types = new Map<string, {kind: string; bytes: Uint8Array}>();
  for (const desc of schema.registry) {
    if (desc.kind === 'message' && !desc.proto.options?.mapEntry)
      types.set(desc.typeName, {kind: 'message', bytes: toBinary(DescriptorProtoSchema, desc.proto)});
    else if (desc.kind === 'enum')
      types.set(desc.typeName, {kind: 'enum', bytes: toBinary(EnumDescriptorProtoSchema, desc.proto)});
    else if (desc.kind === 'service')
      types.set(desc.typeName, {kind: 'service', bytes: toBinary(ServiceDescriptorProtoSchema, desc.proto)});
  }
  return types;
}

/** Every fully qualified type (`.pkg.Name`) a file refers to. */
function referencedTypes(file: FileDescriptorProto): string[] {
  const types: string[] = [];
  const message = (desc: DescriptorProto) => {
    for (const field of [...desc.field, ...desc.extension]) {
      if (field.typeName) types.push(field.typeName);
      if (field.extendee) types.push(field.extendee);
    }
    for (const nested of desc.nestedType) message(nested);
  };
  for (const desc of file.messageType) message(desc);
  for (const field of file.extension) {
    if (field.typeName) types.push(field.typeName);
    if (field.extendee) types.push(field.extendee);
  }
  for (const service of file.service)
    for (const method of service.method) types.push(method.inputType, method.outputType);
  return types.filter((type) => type.startsWith('.'));
}

function wellKnownFileOf(type: string): string | undefined {
  const match = /^\.google\.protobuf\.(\w+)/.exec(type);
  if (!match) return undefined;
  const file = {
    Any: 'any',
    Duration: 'duration',
    Timestamp: 'timestamp',
    Empty: 'empty',
    FieldMask: 'field_mask',
    Struct: 'struct',
    Value: 'struct',
    ListValue: 'struct',
    NullValue: 'struct',
  }[match[1]];
  if (file) return `google/protobuf/${file}.proto`;
  return /Value$/.test(match[1]) ? 'google/protobuf/wrappers.proto' : undefined;
}

/** A map field's entry type is `<FieldName>Entry` for every strict decoder; fix names that are not. */
function renameMapEntries(file: FileDescriptorProto): void {
  const message = (desc: DescriptorProto, fullName: string) => {
    for (const field of desc.field) {
      const entry = desc.nestedType.find(
        (nested) => nested.options?.mapEntry && field.typeName === `${fullName}.${nested.name}`,
      );
      if (!entry) continue;
      const expected = `${field.name.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase())}Entry`;
      if (entry.name !== expected && !desc.nestedType.some((nested) => nested.name === expected)) {
        entry.name = expected;
        field.typeName = `${fullName}.${expected}`;
      }
    }
    for (const nested of desc.nestedType) message(nested, `${fullName}.${nested.name}`);
  };
  const scope = file.package ? `.${file.package}` : '';
  for (const desc of file.messageType) message(desc, `${scope}.${desc.name}`);
}

/** Files with their dependencies first, as a FileDescriptorSet must be read. */
function dependencyOrder(files: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const ordered: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (file: FileDescriptorProto) => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    for (const dependency of file.dependency) {
      const found = files.get(dependency);
      if (found) visit(found);
    }
    ordered.push(file);
  };
  for (const file of files.values()) visit(file);
  return ordered;
}

/**
 * protobufjs's toDescriptor (behind @grpc/reflection and --proto) writes type names relative to the
 * message that uses them ("Labels", "google.protobuf.Timestamp"); resolve them as protoc does,
 * innermost scope first, into fully qualified names (".pkg.Msg.Labels").
 */
function qualifyTypeNames(file: FileDescriptorProto, definedIn: Map<string, string>): void {
  const qualify = (name: string, scope: string): string => {
    if (!name || name.startsWith('.')) return name;
    const parts = scope.split('.').filter(Boolean);
    for (let i = parts.length; i >= 0; i--) {
      const candidate = `.${[...parts.slice(0, i), name].join('.')}`;
      if (definedIn.has(candidate)) return candidate;
    }
    return `.${name}`;
  };
  const message = (desc: DescriptorProto, scope: string) => {
    const own = `${scope}.${desc.name}`;
    for (const field of [...desc.field, ...desc.extension]) {
      // protobufjs writes json_name "" (set, but empty): every field would print as "".
      if (field.jsonName === '') field.jsonName = field.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      if (field.typeName) field.typeName = qualify(field.typeName, own);
      if (field.extendee) field.extendee = qualify(field.extendee, own);
    }
    for (const nested of desc.nestedType) message(nested, own);
  };
  const scope = file.package ? `.${file.package}` : '';
  for (const desc of file.messageType) message(desc, scope);
  for (const field of file.extension) {
    if (field.typeName) field.typeName = qualify(field.typeName, scope);
    if (field.extendee) field.extendee = qualify(field.extendee, scope);
  }
  for (const service of file.service) {
    for (const method of service.method) {
      method.inputType = qualify(method.inputType, scope);
      method.outputType = qualify(method.outputType, scope);
    }
  }
}
