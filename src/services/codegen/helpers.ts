import path from 'node:path';
import type Handlebars from 'handlebars';
import type {FileRegistry} from '@bufbuild/protobuf';
import {esFilePath, esFileView} from './es-model.js';
import type {CodegenModel, FieldModel, FileModel, PackageModel} from './model.js';
import type {ServiceModel} from './model.js';

type Engine = typeof Handlebars;

/** TypeScript types of scalars as @grpc/proto-loader decodes them with tacos's options (longs: String). */
const TS_SCALARS: Record<string, string> = {
  string: 'string',
  bool: 'boolean',
  bytes: 'Buffer',
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  int64: 'string',
  uint64: 'string',
  sint64: 'string',
  fixed64: 'string',
  sfixed64: 'string',
};

/** Well-known types as proto-loader hands them over (plain objects, no wrapper classes). */
const TS_WELL_KNOWN: Record<string, string> = {
  'google.protobuf.Timestamp': '{seconds: string; nanos: number}',
  'google.protobuf.Duration': '{seconds: string; nanos: number}',
  'google.protobuf.Any': '{type_url: string; value: Buffer}',
  'google.protobuf.Empty': 'Record<string, never>',
  'google.protobuf.Struct': '{fields: Record<string, unknown>}',
  'google.protobuf.Value': 'Record<string, unknown>',
  'google.protobuf.ListValue': '{values: Record<string, unknown>[]}',
  'google.protobuf.FieldMask': '{paths: string[]}',
  'google.protobuf.DoubleValue': '{value: number}',
  'google.protobuf.FloatValue': '{value: number}',
  'google.protobuf.Int64Value': '{value: string}',
  'google.protobuf.UInt64Value': '{value: string}',
  'google.protobuf.Int32Value': '{value: number}',
  'google.protobuf.UInt32Value': '{value: number}',
  'google.protobuf.BoolValue': '{value: boolean}',
  'google.protobuf.StringValue': '{value: string}',
  'google.protobuf.BytesValue': '{value: Buffer}',
};

const GO_SCALARS: Record<string, string> = {
  string: 'string',
  bool: 'bool',
  bytes: '[]byte',
  double: 'float64',
  float: 'float32',
  int32: 'int32',
  uint32: 'uint32',
  sint32: 'int32',
  fixed32: 'uint32',
  sfixed32: 'int32',
  int64: 'int64',
  uint64: 'uint64',
  sint64: 'int64',
  fixed64: 'uint64',
  sfixed64: 'int64',
};

const pascal = (text: string) => text.replace(/(^|[_.\s-])([a-z0-9])/gi, (_, __, c: string) => c.toUpperCase());
const camel = (text: string) => pascal(text).replace(/^[A-Z]/, (c) => c.toLowerCase());

/**
 * The helpers every template may use. Language-specific naming lives here, so templates stay
 * declarative: tsType/tsRef for TypeScript, goType for Go, plus case conversions and comments.
 */
export function registerHelpers(engine: Engine, model: CodegenModel): void {
  const typePackage = new Map<string, string>(
    [...model.messages, ...model.enums].map((item) => [item.fullName, item.package]),
  );
  const localName = new Map<string, string>(
    [...model.messages, ...model.enums].map((item) => [item.fullName, item.name]),
  );
  const enums = new Set(model.enums.map((item) => item.fullName));
  const alias = (pkg: string) => pkg.replace(/\./g, '_');

  /** A message or enum's TypeScript name, seen from `from` (a package name). */
  const tsRef = (fullName: string, from: string, output: boolean): string => {
    if (TS_WELL_KNOWN[fullName]) return TS_WELL_KNOWN[fullName];
    const pkg = typePackage.get(fullName);
    if (pkg === undefined) {
      throw new Error(
        `${fullName} is neither in the .proto files given nor a well-known type this template knows; give its file in the proto dir`,
      );
    }
    const name = `${localName.get(fullName) ?? fullName.split('.').pop()}${output && !enums.has(fullName) ? '__Output' : ''}`;
    return pkg === from ? name : `${alias(pkg)}.${name}`;
  };
  const tsElement = (field: FieldModel, from: string, output: boolean) =>
    field.kind === 'scalar' ? (TS_SCALARS[field.type] ?? 'unknown') : tsRef(field.type, from, output);

  engine.registerHelper('tsType', (field: FieldModel, from: string, mode: string | object) => {
    const output = mode === 'output';
    const element = tsElement(field, from, output);
    if (field.mapKey) return `Record<string, ${element}>`;
    if (field.repeated) return `${element}[]`;
    // Decoded with defaults: an unset message field is null; scalars and enums take their default.
    return output && field.kind === 'message' ? `${element} | null` : element;
  });
  engine.registerHelper('tsRef', (fullName: string, from: string, mode: string | object) =>
    tsRef(fullName, from, mode === 'output'),
  );
  engine.registerHelper('alias', alias);
  engine.registerHelper('goType', (field: FieldModel, from: PackageModel) => {
    const element =
      field.kind === 'scalar'
        ? GO_SCALARS[field.type]
        : `${field.kind === 'message' ? '*' : ''}${typePackage.get(field.type) === from.name ? '' : `${goPackageOf(field.type)}.`}${(localName.get(field.type) ?? '').replace(/\./g, '_')}`;
    if (field.mapKey) return `map[${GO_SCALARS[field.mapKey]}]${element}`;
    return field.repeated ? `[]${element}` : element;
  });
  const goPackageOf = (fullName: string) =>
    model.packages.find((pkg) => pkg.name === typePackage.get(fullName))?.goPackageName ?? 'unknown';
  engine.registerHelper('goPackageOf', goPackageOf);
  engine.registerHelper('pascal', (text: string) => pascal(String(text)));
  engine.registerHelper('camel', (text: string) => camel(String(text)));
  engine.registerHelper('lower', (text: string) => String(text).toLowerCase());
  engine.registerHelper('snake', (text: string) =>
    String(text)
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase(),
  );
  engine.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  engine.registerHelper('json', (value: unknown) => JSON.stringify(value));
  engine.registerHelper('concat', (...parts: unknown[]) => parts.slice(0, -1).join(''));
  /** A relative import path between two generated files (from the dir of `from`). */
  engine.registerHelper('relative', (from: string, to: string) => {
    const relative = path.posix.relative(path.posix.dirname(from), to);
    return relative.startsWith('.') ? relative : `./${relative}`;
  });
  /** A comment block: `prefix` before each line (`// `, ` * `), nothing when there is no comment. */
  engine.registerHelper('comment', (text: string | undefined, indent: string | object) => {
    if (!text) return '';
    const pad = typeof indent === 'string' ? indent : '';
    return `${text
      .trim()
      .split('\n')
      .map((line) => `${pad}// ${line.trim()}`.trimEnd())
      .join('\n')}\n`;
  });
  registerGoClientHelpers(engine, model);
}

/**
 * A name as protoc-gen-go spells it (protogen's GoCamelCase): `get_thing` → `GetThing`,
 * `Outer.Inner` → `Outer_Inner`. Service, method and message names of the generated Go code.
 */
export function goCamelCase(name: string): string {
  let out = '';
  const lower = (c: string | undefined) => c !== undefined && c >= 'a' && c <= 'z';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '.' && lower(name[i + 1])) continue;
    if (c === '.') out += '_';
    else if (c === '_' && (i === 0 || name[i - 1] === '.')) out += 'X';
    else if (c === '_' && lower(name[i + 1])) continue;
    else if (c >= '0' && c <= '9') out += c;
    else {
      out += lower(c) ? c.toUpperCase() : c;
      while (lower(name[i + 1])) out += name[++i];
    }
  }
  return out;
}

/** Well-known types in Go: the package that holds each, and its import path. */
const GO_WELL_KNOWN: Record<string, {name: string; path: string}> = {
  Any: {name: 'anypb', path: 'google.golang.org/protobuf/types/known/anypb'},
  Duration: {name: 'durationpb', path: 'google.golang.org/protobuf/types/known/durationpb'},
  Empty: {name: 'emptypb', path: 'google.golang.org/protobuf/types/known/emptypb'},
  FieldMask: {name: 'fieldmaskpb', path: 'google.golang.org/protobuf/types/known/fieldmaskpb'},
  Struct: {name: 'structpb', path: 'google.golang.org/protobuf/types/known/structpb'},
  Value: {name: 'structpb', path: 'google.golang.org/protobuf/types/known/structpb'},
  ListValue: {name: 'structpb', path: 'google.golang.org/protobuf/types/known/structpb'},
  Timestamp: {name: 'timestamppb', path: 'google.golang.org/protobuf/types/known/timestamppb'},
};

/** Names that the go-grpc template's clients package defines itself. */
const GO_CLIENT_RESERVED = new Set(['Close', 'Manager', 'Config']);

/**
 * The helpers of Go client wrappers (templates/go-grpc), all one Go package:
 *  - goName NAME: the Go spelling of a proto name (goCamelCase);
 *  - goRef FULL_NAME: a message's qualified Go type (`reservationv1.CreateReservationRequest`);
 *  - goClientImports PACKAGE: the third-party imports of a package's client file, sorted by path
 *    (grpc, the package's go_package, the packages of its methods' types), each {name, path};
 *  - goBackendName PACKAGE: the backend a package is served by, for Go names (`Reservation`):
 *    the first part of the package name, or all of it when two packages share that part;
 *  - goClientFile PACKAGE: that backend's file (`reservation.go`);
 *  - goClientBase SERVICE: a service's client name without `Client` (`Reservation` for
 *    ReservationService), prefixed with its backend when two packages' services would clash.
 */
function registerGoClientHelpers(engine: Engine, model: CodegenModel): void {
  const typePackage = new Map<string, string>(
    [...model.messages, ...model.enums].map((item) => [item.fullName, item.package]),
  );
  const wellKnown = (fullName: string) =>
    fullName.startsWith('google.protobuf.') ? GO_WELL_KNOWN[fullName.slice('google.protobuf.'.length)] : undefined;
  const packageByName = new Map(model.packages.map((pkg) => [pkg.name, pkg]));
  const goRef = (fullName: string): string => {
    const known = wellKnown(fullName);
    if (known) return `${known.name}.${fullName.split('.').pop()}`;
    const pkg = packageByName.get(typePackage.get(fullName) ?? '');
    if (!pkg) return goCamelCase(fullName.split('.').pop() ?? fullName);
    return `${pkg.goPackageName}.${goCamelCase(fullName.slice(pkg.name.length + 1))}`;
  };
  const firstPart = (pkg: PackageModel) => pkg.name.split('.')[0];
  const backendName = (pkg: PackageModel): string => {
    const shared = model.packages.some((other) => other !== pkg && firstPart(other) === firstPart(pkg));
    const name = goCamelCase(shared ? pkg.name.replace(/\./g, '_') : firstPart(pkg));
    return GO_CLIENT_RESERVED.has(name) ? `${name}Backend` : name;
  };
  const serviceBase = (service: ServiceModel) => goCamelCase(service.name).replace(/(.)Service$/, '$1');
  engine.registerHelper('goName', (name: string) => goCamelCase(String(name)));
  engine.registerHelper('goRef', (fullName: string) => goRef(String(fullName)));
  engine.registerHelper('goClientImports', (pkg: PackageModel) => {
    const imports = new Map<string, string>([
      ['google.golang.org/grpc', ''],
      [pkg.goImportPath, pkg.goPackageName],
    ]);
    for (const service of pkg.services) {
      for (const method of service.methods) {
        for (const type of [method.inputType, method.outputType]) {
          const known = wellKnown(type);
          const owner = packageByName.get(typePackage.get(type) ?? '');
          if (known) imports.set(known.path, known.name);
          else if (owner) imports.set(owner.goImportPath, owner.goPackageName);
        }
      }
    }
    return [...imports]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([importPath, name]) => ({name, path: importPath}));
  });
  engine.registerHelper('goBackendName', (pkg: PackageModel) => backendName(pkg));
  // A package without services has no clients: no file (an empty path is skipped).
  engine.registerHelper('goClientFile', (pkg: PackageModel) =>
    pkg.services.length
      ? `${backendName(pkg)
          .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
          .toLowerCase()}.go`
      : '',
  );
  engine.registerHelper('goClientBase', (service: ServiceModel) => {
    const base = serviceBase(service);
    const clash = model.services.some(
      (other) => other !== service && other.package !== service.package && serviceBase(other) === base,
    );
    const pkg = packageByName.get(service.package);
    const name = (clash || GO_CLIENT_RESERVED.has(base)) && pkg ? `${backendName(pkg)}${base}` : base;
    return GO_CLIENT_RESERVED.has(name) ? `${name}Service` : name;
  });
}

/**
 * The helpers of templates that embed descriptors (protobuf-es v2 style, templates/ts-connect-web):
 *  - esFilePath FILE: the module of a .proto file (`gateway/v1/queue_pb.ts`), empty for none;
 *  - esFile FILE: its view (es-model.ts): embedded descriptor, imports, messages, enums, services.
 */
export function registerEsHelpers(engine: Engine, registry: FileRegistry, protoRoot: string): void {
  engine.registerHelper('esFilePath', (file: FileModel) => esFilePath(file.name, protoRoot));
  engine.registerHelper('esFile', (file: FileModel) => esFileView(registry, file.name, protoRoot));
}
