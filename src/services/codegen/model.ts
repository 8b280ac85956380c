import {existsSync, readdirSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import type * as Protobuf from 'protobufjs';
import {errorMessage, TacosError} from '../errors.js';

/** The one model every template sees (README: "The codegen model"). */
export interface CodegenModel {
  files: FileModel[];
  packages: PackageModel[];
  services: ServiceModel[];
  messages: MessageModel[];
  enums: EnumModel[];
}

export interface FileModel {
  /** As imported: proto/gateway/v1/queue.proto. */
  name: string;
  package: string;
  services: ServiceModel[];
  messages: MessageModel[];
  enums: EnumModel[];
}

export interface PackageModel {
  /** gateway.v1 */
  name: string;
  /** gateway/v1 */
  path: string;
  /** The go_package import path, and the Go package name (gatewayv1). */
  goImportPath: string;
  goPackageName: string;
  files: FileModel[];
  services: ServiceModel[];
  messages: MessageModel[];
  enums: EnumModel[];
  /** Other packages whose types this one's messages use. */
  imports: PackageModel[];
}

export type MethodKind = 'unary' | 'server_streaming' | 'client_streaming' | 'bidi_streaming';

export interface ServiceModel {
  name: string;
  fullName: string;
  package: string;
  file: string;
  comment: string;
  methods: MethodModel[];
  /** Other packages whose types this service's methods take or return. */
  imports: PackageModel[];
}

export interface MethodModel {
  name: string;
  /** /gateway.v1.QueueService/JoinQueue */
  path: string;
  kind: MethodKind;
  clientStreaming: boolean;
  serverStreaming: boolean;
  inputType: string;
  outputType: string;
  comment: string;
}

export interface MessageModel {
  /** JoinQueueRequest; nested: Outer_Inner. */
  name: string;
  fullName: string;
  package: string;
  file: string;
  comment: string;
  fields: FieldModel[];
  oneofs: Array<{name: string; fields: string[]}>;
}

export type FieldKind = 'scalar' | 'enum' | 'message';

export interface FieldModel {
  name: string;
  jsonName: string;
  number: number;
  /** A scalar type (string, int64 ...) or the full name of a message or enum. */
  type: string;
  kind: FieldKind;
  repeated: boolean;
  /** Set for map fields: the key's scalar type (the value is type/kind). */
  mapKey?: string;
  oneof?: string;
  /** proto3 `optional`: has presence. */
  optional: boolean;
  comment: string;
}

export interface EnumModel {
  name: string;
  fullName: string;
  package: string;
  file: string;
  comment: string;
  values: Array<{name: string; number: number; comment: string}>;
}

/**
 * Reads every .proto file under `protoDir` with protobufjs (no protoc) into the model. Imports
 * resolve from the parent of `protoDir` (they are written "proto/<pkg>/v1/<file>.proto"), the
 * well-known types from protobufjs's own copies. Everything is in a stable order.
 */
export function buildModel(protoDir: string): CodegenModel {
  const protobuf = createRequire(import.meta.url)('protobufjs') as typeof Protobuf;
  if (!existsSync(protoDir))
    throw new TacosError(`No proto dir ${protoDir}.`, {hint: 'Give it with --proto DIR.', code: 'NO_PROTO'});
  const importRoot = path.dirname(path.resolve(protoDir));
  const files = readdirSync(protoDir, {recursive: true, encoding: 'utf8'})
    .filter((file) => file.endsWith('.proto'))
    .map((file) => path.join(protoDir, file))
    .sort();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(importRoot, target));
  try {
    root.loadSync(
      files.map((file) => path.resolve(file)),
      {keepCase: true, alternateCommentMode: true},
    );
    root.resolveAll();
  } catch (error) {
    throw new TacosError(`The .proto files do not parse: ${errorMessage(error)}`, {
      hint: 'Fix the file named; `npx buf lint` shows more.',
      code: 'PROTO_INVALID',
    });
  }

  const fileName = (object: Protobuf.ReflectionObject) =>
    path
      .relative(importRoot, object.filename ?? '')
      .split(path.sep)
      .join('/');
  const ours = (object: Protobuf.ReflectionObject) =>
    !!object.filename && path.resolve(object.filename).startsWith(path.resolve(protoDir));
  const fullName = (object: Protobuf.ReflectionObject) => object.fullName.replace(/^\./, '');
  const packageOf = (object: Protobuf.ReflectionObject): string => {
    let scope = object.parent;
    while (scope && scope instanceof protobuf.Type) scope = scope.parent;
    return scope ? fullName(scope) : '';
  };
  const localName = (object: Protobuf.ReflectionObject) =>
    fullName(object)
      .slice(packageOf(object).length + 1)
      .replace(/\./g, '_');

  const messages: MessageModel[] = [];
  const enums: EnumModel[] = [];
  const services: ServiceModel[] = [];
  const visit = (namespace: Protobuf.NamespaceBase) => {
    for (const object of namespace.nestedArray) {
      if (object instanceof protobuf.Type) {
        if (ours(object) && !object.options?.map_entry) messages.push(messageModel(object));
        visit(object);
      } else if (object instanceof protobuf.Enum) {
        if (ours(object)) {
          enums.push({
            name: localName(object),
            fullName: fullName(object),
            package: packageOf(object),
            file: fileName(object),
            comment: object.comment ?? '',
            values: Object.entries(object.values).map(([name, number]) => ({
              name,
              number,
              comment: object.comments[name] ?? '',
            })),
          });
        }
      } else if (object instanceof protobuf.Service) {
        if (ours(object)) services.push(serviceModel(object));
      } else if (object instanceof protobuf.Namespace) {
        visit(object);
      }
    }
  };
  const typeName = (field: Protobuf.Field): {type: string; kind: FieldKind} => {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) return {type: fullName(resolved), kind: 'message'};
    if (resolved instanceof protobuf.Enum) return {type: fullName(resolved), kind: 'enum'};
    return {type: field.type, kind: 'scalar'};
  };
  function messageModel(type: Protobuf.Type): MessageModel {
    const oneofs = type.oneofsArray.filter(
      (oneof) => !(oneof.fieldsArray.length === 1 && oneof.fieldsArray[0].options?.proto3_optional),
    );
    return {
      name: localName(type),
      fullName: fullName(type),
      package: packageOf(type),
      file: fileName(type),
      comment: type.comment ?? '',
      fields: type.fieldsArray.map((field) => ({
        name: field.name,
        jsonName: field.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
        number: field.id,
        ...typeName(field),
        repeated: field.repeated,
        mapKey: field instanceof protobuf.MapField ? field.keyType : undefined,
        oneof: field.partOf && oneofs.includes(field.partOf) ? field.partOf.name : undefined,
        optional: Boolean(field.options?.proto3_optional),
        comment: field.comment ?? '',
      })),
      oneofs: oneofs.map((oneof) => ({name: oneof.name, fields: oneof.fieldsArray.map((field) => field.name)})),
    };
  }
  function serviceModel(service: Protobuf.Service): ServiceModel {
    return {
      name: service.name,
      fullName: fullName(service),
      package: packageOf(service),
      file: fileName(service),
      comment: service.comment ?? '',
      methods: service.methodsArray.map((method) => {
        method.resolve();
        const clientStreaming = Boolean(method.requestStream);
        const serverStreaming = Boolean(method.responseStream);
        return {
          name: method.name,
          path: `/${fullName(service)}/${method.name}`,
          kind: clientStreaming
            ? serverStreaming
              ? 'bidi_streaming'
              : 'client_streaming'
            : serverStreaming
              ? 'server_streaming'
              : 'unary',
          clientStreaming,
          serverStreaming,
          inputType: fullName(method.resolvedRequestType!),
          outputType: fullName(method.resolvedResponseType!),
          comment: method.comment ?? '',
        };
      }),
      imports: [], // filled in once every package is known
    };
  }
  visit(root);

  const fileModels: FileModel[] = files.map((file) => {
    const name = path.relative(importRoot, path.resolve(file)).split(path.sep).join('/');
    const pick = <T extends {file: string}>(items: T[]) => items.filter((item) => item.file === name);
    const inFile = [...pick(messages), ...pick(enums), ...pick(services)];
    return {
      name,
      package: inFile[0] ? (inFile[0] as {package: string}).package : '',
      services: pick(services),
      messages: pick(messages),
      enums: pick(enums),
    };
  });
  const packageNames = [...new Set(fileModels.map((file) => file.package))].sort();
  const packages: PackageModel[] = packageNames.map((name) => {
    const lookup = root.lookup(name);
    const goPackage = String(lookup?.options?.go_package ?? '');
    const [goImportPath, goName] = goPackage.split(';');
    return {
      name,
      path: name.replace(/\./g, '/'),
      goImportPath: goImportPath ?? '',
      goPackageName: goName ?? path.basename(goImportPath ?? name.replace(/\./g, '')),
      files: fileModels.filter((file) => file.package === name),
      services: services.filter((service) => service.package === name),
      messages: messages.filter((message) => message.package === name),
      enums: enums.filter((item) => item.package === name),
      imports: [],
    };
  });
  const typePackage = new Map<string, string>([...messages, ...enums].map((item) => [item.fullName, item.package]));
  for (const pkg of packages) {
    const importsOf = (types: string[]) => {
      const used = new Set(types.map((type) => typePackage.get(type) ?? ''));
      return packages.filter((other) => other !== pkg && used.has(other.name));
    };
    pkg.imports = importsOf(
      pkg.messages.flatMap((message) =>
        message.fields.filter((field) => field.kind !== 'scalar').map((field) => field.type),
      ),
    );
    for (const service of pkg.services)
      service.imports = importsOf(service.methods.flatMap((method) => [method.inputType, method.outputType]));
  }
  return {files: fileModels, packages, services, messages, enums};
}
