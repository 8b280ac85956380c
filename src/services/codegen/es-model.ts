import path from 'node:path';
import {
  ScalarType,
  type DescEnum,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescOneof,
  type FileRegistry,
} from '@bufbuild/protobuf';
import {embedFileDesc, pathInFileDesc} from '@bufbuild/protobuf/codegenv2';
import {isWrapperDesc} from '@bufbuild/protobuf/wkt';

/**
 * One .proto file as protoc-gen-es v2 writes it (the ts-connect-web template): the embedded
 * descriptor, and TypeScript names and types of its messages, enums and services, with the
 * imports they need. Built from the compiled descriptors, so names (localName, enum value
 * prefixes stripped) and paths are protobuf-es's own.
 */
export interface EsFileView {
  /** file_proto_gateway_v1_queue */
  fileSymbol: string;
  base64: string;
  /** The file symbols of its dependencies, in the descriptor's order. */
  dependencies: string[];
  /** Import lines, sorted. */
  imports: string[];
  messages: Array<{name: string; typeName: string; path: string; fields: Array<{name: string; type: string}>}>;
  enums: Array<{name: string; path: string; values: Array<{name: string; number: number}>}>;
  services: Array<{
    name: string;
    path: string;
    methods: Array<{name: string; kind: string; input: string; output: string}>;
  }>;
}

const WKT_MODULE = '@bufbuild/protobuf/wkt';
const WKT_PREFIX = 'google/protobuf/';

/** Where a .proto file's generated module goes (the name with or without .proto, as the model or the registry gives it), relative to the output dir (`gateway/v1/queue_pb.ts`). */
export function esFilePath(protoFile: string, protoRoot: string): string {
  const relative = protoFile.startsWith(`${protoRoot}/`) ? protoFile.slice(protoRoot.length + 1) : protoFile;
  return `${relative.replace(/\.proto$/, '')}_pb.ts`;
}

const fileSymbol = (file: DescFile) => `file_${file.name.replace(/[^\w]/g, '_')}`;

/** A message or enum's exported name: nested ones joined with `_`, as protoc-gen-es does. */
const localTypeName = (desc: DescMessage | DescEnum) =>
  desc.file.proto.package ? desc.typeName.slice(desc.file.proto.package.length + 1).replace(/\./g, '_') : desc.typeName;

/** The view of `protoFile` (as the registry names it: proto/gateway/v1/queue.proto). */
export function esFileView(registry: FileRegistry, protoFile: string, protoRoot: string): EsFileView {
  const file = registry.getFile(protoFile);
  if (!file) throw new Error(`${protoFile} is not in the compiled contracts`);
  const here = esFilePath(file.name, protoRoot);
  const imports = new Map<string, Map<string, {alias: string; typeOnly: boolean}>>();
  // The runtime's names, imported by every module, are never an alias.
  const taken = new Set([
    'Message',
    'GenEnum',
    'GenFile',
    'GenMessage',
    'GenService',
    'enumDesc',
    'fileDesc',
    'messageDesc',
    'serviceDesc',
  ]);
  const allMessages: DescMessage[] = [];
  const allEnums: DescEnum[] = [...file.enums];
  const visit = (message: DescMessage) => {
    allMessages.push(message);
    allEnums.push(...message.nestedEnums);
    message.nestedMessages.forEach(visit);
  };
  file.messages.forEach(visit);
  for (const desc of [...allMessages, ...allEnums]) taken.add(localTypeName(desc)).add(`${localTypeName(desc)}Schema`);
  for (const service of file.services) taken.add(service.name);

  const moduleOf = (other: DescFile) => {
    if (other.name.startsWith(WKT_PREFIX)) return WKT_MODULE;
    const relative = path.posix.relative(path.posix.dirname(here), esFilePath(other.name, protoRoot));
    return (relative.startsWith('.') ? relative : `./${relative}`).replace(/\.ts$/, '.js');
  };
  /** An identifier from another module, renamed (`Name$1`) when it would clash with one of this file's. */
  const use = (other: DescFile, name: string, typeOnly: boolean): string => {
    if (other === file) return name;
    const from = moduleOf(other);
    const names = imports.get(from) ?? new Map<string, {alias: string; typeOnly: boolean}>();
    imports.set(from, names);
    const known = names.get(name);
    if (known) {
      known.typeOnly &&= typeOnly;
      return known.alias;
    }
    let alias = name;
    for (let suffix = 1; taken.has(alias); suffix += 1) alias = `${name}$${suffix}`;
    taken.add(alias);
    names.set(name, {alias, typeOnly});
    return alias;
  };
  const typeRef = (desc: DescMessage | DescEnum) => use(desc.file, localTypeName(desc), true);
  const schemaRef = (desc: DescMessage) => use(desc.file, `${localTypeName(desc)}Schema`, true);

  const fieldType = (field: DescField): {type: string; optional: boolean} => {
    switch (field.fieldKind) {
      case 'scalar':
        return {type: scalarType(field.scalar, field.longAsString), optional: field.proto.proto3Optional};
      case 'enum':
        return {type: typeRef(field.enum), optional: field.proto.proto3Optional};
      case 'message':
        // Wrappers are their value, unboxed, as protobuf-es gives them.
        if (isWrapperDesc(field.message))
          return {
            type: scalarType(field.message.fields[0].scalar, field.message.fields[0].longAsString),
            optional: true,
          };
        return {type: typeRef(field.message), optional: true};
      case 'list': {
        const element =
          field.listKind === 'scalar'
            ? scalarType(field.scalar, field.longAsString)
            : typeRef(field.listKind === 'enum' ? field.enum : field.message);
        return {type: `${element}[]`, optional: false};
      }
      case 'map': {
        const key = [ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32];
        const value =
          field.mapKind === 'scalar'
            ? scalarType(field.scalar, false)
            : typeRef(field.mapKind === 'enum' ? field.enum : field.message);
        return {type: `{ [key: ${key.includes(field.mapKey) ? 'number' : 'string'}]: ${value} }`, optional: false};
      }
    }
  };
  const oneofType = (oneof: DescOneof): string =>
    [
      ...oneof.fields.map((field) => {
        const value = field.fieldKind === 'message' ? typeRef(field.message) : fieldType(field).type;
        return `{ value: ${value}; case: "${field.localName}" }`;
      }),
      '{ case: undefined; value?: undefined }',
    ].join(' | ');

  const view: EsFileView = {
    fileSymbol: fileSymbol(file),
    base64: embedFileDesc(file.proto).base64(),
    dependencies: file.dependencies.map((dependency) => use(dependency, fileSymbol(dependency), false)),
    imports: [],
    messages: allMessages.map((message) => ({
      name: localTypeName(message),
      typeName: message.typeName,
      path: pathInFileDesc(message).join(', '),
      fields: message.members.map((member) => {
        if (member.kind === 'oneof') return {name: member.localName, type: oneofType(member)};
        const {type, optional} = fieldType(member);
        return {name: `${member.localName}${optional ? '?' : ''}`, type};
      }),
    })),
    enums: allEnums.map((desc) => ({
      name: localTypeName(desc),
      path: pathInFileDesc(desc).join(', '),
      values: desc.values.map((value) => ({name: value.localName, number: value.number})),
    })),
    services: file.services.map((service) => ({
      name: service.name,
      path: pathInFileDesc(service).join(', '),
      methods: service.methods.map((method) => ({
        name: method.localName,
        kind: method.methodKind,
        input: schemaRef(method.input),
        output: schemaRef(method.output),
      })),
    })),
  };
  view.imports = [...imports.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([from, names]) => {
      const spec = (entries: Array<[string, {alias: string}]>) =>
        entries
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, {alias}]) => (alias === name ? name : `${name} as ${alias}`))
          .join(', ');
      const values = [...names].filter(([, use]) => !use.typeOnly);
      const types = [...names].filter(([, use]) => use.typeOnly);
      return [
        ...(types.length ? [`import type { ${spec(types)} } from "${from}";`] : []),
        ...(values.length ? [`import { ${spec(values)} } from "${from}";`] : []),
      ];
    });
  return view;
}

function scalarType(scalar: ScalarType, longAsString: boolean): string {
  switch (scalar) {
    case ScalarType.STRING:
      return 'string';
    case ScalarType.BOOL:
      return 'boolean';
    case ScalarType.BYTES:
      return 'Uint8Array';
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? 'string' : 'bigint';
    default:
      return 'number';
  }
}
