/**
 * gRPC servers for the `tacos call` tests, started in the test process on 127.0.0.1:0:
 * - the AllTypes server (test/grpc/fixtures/call_all_types.proto compiled by buf): every streaming
 *   kind, echoing what it got and the metadata it received, one method failing with details, and a
 *   hand-written reflection service that speaks only v1alpha (as grpc C++ up to 1.51 does), or none;
 * - the defective-reflection server: @grpc/reflection over a @grpc/proto-loader package definition
 *   (grpc-node#2595: files without dependencies, map entries named oddly).
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type FileRegistry,
  type Message,
} from '@bufbuild/protobuf';
import {
  AnySchema,
  anyPack,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {ReflectionService} from '@grpc/reflection';
import {execa} from 'execa';
import {loadContractSet} from '../../src/services/contracts.js';
import {REPO_ROOT} from './cli.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from './required-checks.js';

export const FIXTURES = path.join(REPO_ROOT, 'test', 'grpc', 'fixtures');
export const ALL_TYPES_PROTO = path.join(FIXTURES, 'call_all_types.proto');
export const DEFECTIVE_PROTO = path.join(FIXTURES, 'call_defective.proto');
const BUF = path.join(REPO_ROOT, 'node_modules', '@bufbuild', 'buf', 'bin', 'buf');
const REFLECTION_PROTO_DIR = path.join(REPO_ROOT, 'node_modules', '@grpc', 'reflection', 'build', 'proto');

/** The detail of a type no client can know: `tacostest.hidden.Secret` {1: "abc"}. */
export const UNKNOWN_DETAIL_TYPE = 'type.googleapis.com/tacostest.hidden.Secret';
export const UNKNOWN_DETAIL_BYTES = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]);

/** A fixture compiled by buf (imports and source info included, as a real compiler emits them). */
export async function compileFixture(file: string): Promise<{files: FileDescriptorProto[]; registry: FileRegistry}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-fixture-'));
  try {
    const out = path.join(dir, 'set.binpb');
    await execa(process.execPath, [BUF, 'build', FIXTURES, '--path', file, '-o', out], {
      cwd: REPO_ROOT,
      timeout: 30_000,
    });
    const set = fromBinary(FileDescriptorSetSchema, new Uint8Array(await readFile(out)));
    return {files: set.file, registry: createFileRegistry(set)};
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

/** A call as the server saw it. */
export interface ReceivedCall {
  method: string;
  metadata: Record<string, string>;
  /** The requests, decoded by the server (64-bit integers as bigint). */
  requests: Array<Message & Record<string, any>>;
}

export interface TestServer {
  address: string;
  port: number;
  calls: ReceivedCall[];
  /** Metadata of each reflection stream opened. */
  reflectionCalls: Array<Record<string, string>>;
  /** Turns the reflection service off (answers UNIMPLEMENTED) or on again. */
  setReflection(enabled: boolean): void;
  /** Stops the server; safe twice. */
  stop(): Promise<void>;
}

function metadataRecord(metadata: grpc.Metadata): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap()))
    record[key] = Buffer.isBuffer(value) ? value.toString('base64') : String(value);
  return record;
}

const raw = {
  requestSerialize: (bytes: Buffer) => bytes,
  requestDeserialize: (bytes: Buffer) => bytes,
  responseSerialize: (bytes: Buffer) => bytes,
  responseDeserialize: (bytes: Buffer) => bytes,
};

function rawMethod(
  service: string,
  method: string,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<Buffer, Buffer> {
  return {path: `/${service}/${method}`, requestStream, responseStream, originalName: method, ...raw};
}

async function bind(
  server: grpc.Server,
  credentials: grpc.ServerCredentials,
  address = '127.0.0.1:0',
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port))),
  );
}

function stopper(server: grpc.Server): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }));
}

export interface AllTypesServerOptions {
  /** 'v1alpha': reflection v1alpha only (v1 is UNIMPLEMENTED); 'none': no reflection at all. */
  reflection: 'v1alpha' | 'none';
  /** TLS with this key and certificate (PEM). */
  tls?: {key: Buffer; cert: Buffer};
  /** Listen on this unix socket path instead of 127.0.0.1:0. */
  unixSocket?: string;
}

/** The AllTypes server (tacostest.v1.AllTypes and tacostest.v1.Mirror). */
export async function startAllTypesServer(options: AllTypesServerOptions): Promise<TestServer> {
  const {files, registry} = await compileFixture('test/grpc/fixtures/call_all_types.proto');
  const contracts = await loadContractSet();
  const desc = (name: string) => (registry.getMessage(name) ?? contracts.registry.getMessage(name)) as DescMessage;
  const input = desc('tacostest.v1.AllTypesMessage');
  const echo = desc('tacostest.v1.Echo');
  const echoMany = desc('tacostest.v1.EchoMany');
  const calls: ReceivedCall[] = [];
  const reflectionCalls: Array<Record<string, string>> = [];
  let reflectionEnabled = true;

  const responseHeaders = () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-echo-header', 'hello');
    return metadata;
  };
  const trailers = () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-echo-trailer', 'done');
    return metadata;
  };
  const received = (method: string, metadata: grpc.Metadata): ReceivedCall => {
    const call: ReceivedCall = {method, metadata: metadataRecord(metadata), requests: []};
    calls.push(call);
    return call;
  };
  const decode = (bytes: Buffer) => fromBinary(input, bytes) as Message & Record<string, any>;
  const echoOf = (got: Message, metadata: Record<string, string>, index: number) =>
    Buffer.from(toBinary(echo, create(echo, {got, receivedMetadata: metadata, index} as any)));

  const unary =
    (service: string) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const seen = received(`${service}/Unary`, call.metadata);
      const request = decode(call.request);
      seen.requests.push(request);
      call.sendMetadata(responseHeaders());
      // `x-delay-ms: N` (at most 5 s) holds the answer back, for deadline tests.
      const delay = Math.min(5000, Number(seen.metadata['x-delay-ms'] ?? 0) || 0);
      setTimeout(() => callback(null, echoOf(request, seen.metadata, 0), trailers()), delay);
    };

  const server = new grpc.Server();
  server.addService(
    {
      Unary: rawMethod('tacostest.v1.AllTypes', 'Unary', false, false),
      ServerStream: rawMethod('tacostest.v1.AllTypes', 'ServerStream', false, true),
      ClientStream: rawMethod('tacostest.v1.AllTypes', 'ClientStream', true, false),
      Bidi: rawMethod('tacostest.v1.AllTypes', 'Bidi', true, true),
      Fail: rawMethod('tacostest.v1.AllTypes', 'Fail', false, false),
    },
    {
      Unary: unary('AllTypes'),
      ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const seen = received('AllTypes/ServerStream', call.metadata);
        const request = decode(call.request);
        seen.requests.push(request);
        call.sendMetadata(responseHeaders());
        // `x-gap-ms: N` (at most 2 s) between messages, to see them printed as they arrive.
        const gap = Math.min(2000, Number(seen.metadata['x-gap-ms'] ?? 0) || 0);
        let index = 0;
        const next = () => {
          if (call.cancelled) return;
          if (++index > 3) return call.end(trailers());
          call.write(echoOf(request, seen.metadata, index));
          setTimeout(next, gap);
        };
        next();
      },
      ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const seen = received('AllTypes/ClientStream', call.metadata);
        call.on('data', (bytes: Buffer) => seen.requests.push(decode(bytes)));
        call.on('end', () =>
          callback(
            null,
            Buffer.from(
              toBinary(echoMany, create(echoMany, {got: seen.requests, receivedMetadata: seen.metadata} as any)),
            ),
            trailers(),
          ),
        );
      },
      Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const seen = received('AllTypes/Bidi', call.metadata);
        call.sendMetadata(responseHeaders());
        call.on('data', (bytes: Buffer) => {
          const request = decode(bytes);
          seen.requests.push(request);
          call.write(echoOf(request, seen.metadata, seen.requests.length));
        });
        call.on('end', () => call.end(trailers()));
      },
      Fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const seen = received('AllTypes/Fail', call.metadata);
        seen.requests.push(decode(call.request));
        const status = desc('google.rpc.Status');
        const badRequest = desc('google.rpc.BadRequest');
        const retryInfo = desc('google.rpc.RetryInfo');
        const details = [
          anyPack(
            badRequest,
            create(badRequest, {fieldViolations: [{field: 'title', description: 'must not be empty'}]} as any),
          ),
          anyPack(retryInfo, create(retryInfo, {retryDelay: {seconds: 1n, nanos: 500_000_000}} as any)),
          create(AnySchema, {typeUrl: UNKNOWN_DETAIL_TYPE, value: UNKNOWN_DETAIL_BYTES}),
        ];
        const metadata = trailers();
        metadata.set(
          'grpc-status-details-bin',
          Buffer.from(
            toBinary(
              status,
              create(status, {code: grpc.status.INVALID_ARGUMENT, message: 'title must not be empty', details} as any),
            ),
          ),
        );
        callback({code: grpc.status.INVALID_ARGUMENT, details: 'title must not be empty', metadata});
      },
    },
  );
  server.addService({Unary: rawMethod('tacostest.v1.Mirror', 'Unary', false, false)}, {Unary: unary('Mirror')});

  if (options.reflection === 'v1alpha')
    addV1alphaReflection(server, files, ['tacostest.v1.AllTypes', 'tacostest.v1.Mirror'], {
      onCall: (metadata) => reflectionCalls.push(metadataRecord(metadata)),
      enabled: () => reflectionEnabled,
    });

  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(null, [{private_key: options.tls.key, cert_chain: options.tls.cert}], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await bind(server, credentials, options.unixSocket ? `unix:${options.unixSocket}` : undefined);
  return {
    address: options.unixSocket ? `unix:${options.unixSocket}` : `127.0.0.1:${port}`,
    port,
    calls,
    reflectionCalls,
    setReflection: (enabled) => {
      reflectionEnabled = enabled;
    },
    stop: stopper(server),
  };
}

/**
 * grpc.reflection.v1alpha.ServerReflection answered from compiled file descriptors: list_services,
 * file_containing_symbol and file_by_filename (each file with its transitive imports, as grpc-go
 * sends them), NOT_FOUND in error_response for anything else.
 */
function addV1alphaReflection(
  server: grpc.Server,
  files: FileDescriptorProto[],
  services: string[],
  hooks: {onCall(metadata: grpc.Metadata): void; enabled(): boolean},
): void {
  const definition = protoLoader.loadSync('grpc/reflection/v1alpha/reflection.proto', {
    includeDirs: [REFLECTION_PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const byName = new Map(files.map((file) => [file.name, file]));
  const symbols = new Map<string, string>();
  for (const file of files) {
    const scope = file.package ? `${file.package}.` : '';
    const message = (desc: FileDescriptorProto['messageType'][number], prefix: string) => {
      symbols.set(`${prefix}${desc.name}`, file.name);
      for (const nested of desc.nestedType) message(nested, `${prefix}${desc.name}.`);
      for (const nested of desc.enumType) symbols.set(`${prefix}${desc.name}.${nested.name}`, file.name);
    };
    for (const desc of file.messageType) message(desc, scope);
    for (const desc of file.enumType) symbols.set(`${scope}${desc.name}`, file.name);
    for (const service of file.service) {
      symbols.set(`${scope}${service.name}`, file.name);
      for (const method of service.method) symbols.set(`${scope}${service.name}.${method.name}`, file.name);
    }
  }
  const withImports = (name: string): Buffer[] => {
    const out: Buffer[] = [];
    const seen = new Set<string>();
    const visit = (fileName: string) => {
      const file = byName.get(fileName);
      if (!file || seen.has(fileName)) return;
      seen.add(fileName);
      out.push(Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
      for (const dependency of file.dependency) visit(dependency);
    };
    visit(name);
    return out;
  };
  const notFound = (what: string) => ({
    error_response: {error_code: grpc.status.NOT_FOUND, error_message: `${what} not found`},
  });

  server.addService(definition['grpc.reflection.v1alpha.ServerReflection'] as grpc.ServiceDefinition, {
    ServerReflectionInfo: (call: grpc.ServerDuplexStream<Record<string, any>, Record<string, any>>) => {
      hooks.onCall(call.metadata);
      if (!hooks.enabled()) {
        call.emit('error', {code: grpc.status.UNIMPLEMENTED, details: 'reflection is switched off in this test'});
        return;
      }
      call.on('data', (request: Record<string, any>) => {
        let answer: Record<string, unknown>;
        if (request.list_services !== undefined) {
          answer = {
            list_services_response: {
              service: [...services, 'grpc.reflection.v1alpha.ServerReflection'].map((name) => ({name})),
            },
          };
        } else if (request.file_containing_symbol !== undefined) {
          const file = symbols.get(request.file_containing_symbol);
          answer = file
            ? {file_descriptor_response: {file_descriptor_proto: withImports(file)}}
            : notFound(request.file_containing_symbol);
        } else if (request.file_by_filename !== undefined) {
          answer = byName.has(request.file_by_filename)
            ? {file_descriptor_response: {file_descriptor_proto: withImports(request.file_by_filename)}}
            : notFound(request.file_by_filename);
        } else {
          answer = {
            error_response: {error_code: grpc.status.UNIMPLEMENTED, error_message: 'not supported by this test server'},
          };
        }
        call.write({valid_host: request.host ?? '', original_request: request, ...answer});
      });
      call.on('end', () => call.end());
    },
  });
}

/** A proto-loader + @grpc/reflection server of call_defective.proto (tacostest.defect.Stamper). */
export async function startDefectiveServer(): Promise<TestServer> {
  const definition = protoLoader.loadSync(DEFECTIVE_PROTO, {
    includeDirs: [FIXTURES],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  const calls: ReceivedCall[] = [];
  const server = new grpc.Server();
  server.addService(loaded.tacostest.defect.Stamper.service, {
    Stamp: (call: grpc.ServerUnaryCall<Record<string, any>, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      calls.push({method: 'Stamper/Stamp', metadata: metadataRecord(call.metadata), requests: [call.request as any]});
      callback(null, {greeting: `hello ${call.request.name}`, labels: call.request.labels, at: call.request.at});
    },
  });
  new ReflectionService(definition).addToServer(server);
  const port = await bind(server, grpc.ServerCredentials.createInsecure());
  return {
    address: `127.0.0.1:${port}`,
    port,
    calls,
    reflectionCalls: [],
    setReflection: () => undefined,
    stop: stopper(server),
  };
}

/**
 * A self-signed certificate for CN=localhost made by openssl, or the reason there is none (the TLS
 * tests skip then); where every check must run, no certificate is an error.
 */
export async function selfSignedCert(dir: string): Promise<{key: string; cert: string} | {skip: string}> {
  const key = path.join(dir, 'k');
  const cert = path.join(dir, 'c');
  try {
    await execa(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      {timeout: 30_000},
    );
    return {key, cert};
  } catch (error) {
    const reason = `openssl could not make a self-signed certificate: ${(error as Error).message}`;
    if (ALL_CHECKS_REQUIRED) throw missingToolError(reason);
    return {skip: reason};
  }
}

/** The JSON values of a text of pretty-printed JSON objects one after another (what tacos call prints). */
export function jsonObjects(text: string): Array<Record<string, any>> {
  return text
    .split(/(?<=^\})\n/m)
    .filter((part) => part.trim())
    .map((part) => JSON.parse(part) as Record<string, any>);
}
