import {fromBinary} from '@bufbuild/protobuf';
import {FileDescriptorProtoSchema, type FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import {BinaryReader, BinaryWriter, WireType} from '@bufbuild/protobuf/wire';
import {Metadata, status as GrpcStatus, type Client, type ClientDuplexStream, type ServiceError} from '@grpc/grpc-js';
import {TacosError} from '../errors.js';

/** What a server said about itself through reflection. */
export interface ReflectedSchema {
  /** Full names of the services it lists (the reflection service itself left out). */
  services: string[];
  files: FileDescriptorProto[];
  /** Files it could not send (an import it does not have, a service it lists but cannot describe). */
  missing: string[];
  /** The reflection version that answered. */
  version: 'v1' | 'v1alpha';
}

type ReflectionRequest = {list_services: string} | {file_containing_symbol: string} | {file_by_filename: string};
interface ReflectionResponse {
  list_services_response?: {service: Array<{name: string}>};
  file_descriptor_response?: {file_descriptor_proto: Uint8Array[]};
  error_response?: {error_code: number; error_message: string};
}

const VERSIONS = ['v1', 'v1alpha'] as const;

/**
 * grpc.reflection's messages (the same in v1 and v1alpha) written and read by hand, for the few
 * fields a client uses: loading their .proto through proto-loader cost a first call 50-100 ms.
 */
const REQUEST_FIELDS = {file_by_filename: 3, file_containing_symbol: 4, list_services: 7};

function encodeReflectionRequest(request: ReflectionRequest): Buffer {
  const writer = new BinaryWriter();
  for (const [name, value] of Object.entries(request))
    writer.tag(REQUEST_FIELDS[name as keyof typeof REQUEST_FIELDS], WireType.LengthDelimited).string(value);
  return Buffer.from(writer.finish());
}

/** Reads a message, handing each field it has a reader for to it; the other fields are skipped. */
function readFields(bytes: Uint8Array, readers: Record<number, (reader: BinaryReader) => unknown>): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    const read = readers[field];
    if (read) read(reader);
    else reader.skip(wireType, field);
  }
}

function decodeReflectionResponse(bytes: Uint8Array): ReflectionResponse {
  const response: ReflectionResponse = {};
  readFields(bytes, {
    4: (reader) => {
      const files: Uint8Array[] = [];
      readFields(reader.bytes(), {1: (file) => files.push(file.bytes())});
      response.file_descriptor_response = {file_descriptor_proto: files};
    },
    6: (reader) => {
      const service: Array<{name: string}> = [];
      readFields(reader.bytes(), {
        1: (entry) => readFields(entry.bytes(), {1: (name) => service.push({name: name.string()})}),
      });
      response.list_services_response = {service};
    },
    7: (reader) => {
      const error = {error_code: 0, error_message: ''};
      readFields(reader.bytes(), {
        1: (code) => (error.error_code = code.int32()),
        2: (message) => (error.error_message = message.string()),
      });
      response.error_response = error;
    },
  });
  return response;
}

/**
 * One reflection stream: requests answered in order. Fails with UNIMPLEMENTED on a server without
 * this version.
 */
class ReflectionStream {
  private readonly call: ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  private readonly waiting: Array<{resolve: (response: ReflectionResponse) => void; reject: (error: Error) => void}> =
    [];
  private failure?: Error;

  constructor(client: Client, version: (typeof VERSIONS)[number], metadata: Metadata, deadline: number) {
    this.call = client.makeBidiStreamRequest(
      `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      encodeReflectionRequest,
      decodeReflectionResponse,
      metadata,
      {deadline},
    );
    this.call.on('data', (response: ReflectionResponse) => this.waiting.shift()?.resolve(response));
    this.call.on('error', (error: Error) => {
      this.failure = error;
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    });
    this.call.on('end', () => {
      const error = new Error('the server closed the reflection stream');
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    });
  }

  ask(request: ReflectionRequest): Promise<ReflectionResponse> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({resolve, reject});
      this.call.write(request);
    });
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

export interface ReflectOptions {
  /** The target's client: reflection goes over its channel, as the calls do. */
  client: Client;
  metadata: Metadata;
  /** Deadline of the whole exchange. */
  deadline: number;
}

/**
 * The server's services and every file they need, through reflection v1, or v1alpha when the
 * server answers v1 with UNIMPLEMENTED (older grpc C++, grpc-java and Go servers). Files the server
 * cannot send are listed as missing rather than failing the whole exchange.
 */
export function reflect(options: ReflectOptions): Promise<ReflectedSchema> {
  return reflectOnce(options).catch((error: unknown) => {
    // A stream begun on the connection of a server that just went away (a restart): once more, on a new one.
    if ((error as ServiceError).code === GrpcStatus.UNAVAILABLE) return reflectOnce(options);
    throw error;
  });
}

async function reflectOnce(options: ReflectOptions): Promise<ReflectedSchema> {
  for (const version of VERSIONS) {
    const stream = new ReflectionStream(options.client, version, options.metadata, options.deadline);
    try {
      return {...(await describeAll(stream)), version};
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.UNIMPLEMENTED && version === 'v1') continue;
      throw error;
    } finally {
      stream.close();
    }
  }
  throw new TacosError('The server does not offer server reflection (neither v1 nor v1alpha).', {
    hint: 'Give the schema with --proto FILE (and -I DIR for its imports).',
    code: 'NO_REFLECTION',
  });
}

async function describeAll(stream: ReflectionStream): Promise<Omit<ReflectedSchema, 'version'>> {
  const listed = await stream.ask({list_services: '*'});
  if (listed.error_response) throw reflectionError(listed.error_response);
  const services = (listed.list_services_response?.service ?? [])
    .map((service) => service.name)
    .filter((name) => !name.startsWith('grpc.reflection.'));
  const files = new Map<string, FileDescriptorProto>();
  const missing: string[] = [];
  const take = (response: ReflectionResponse, what: string) => {
    if (response.error_response || !response.file_descriptor_response) {
      missing.push(what);
      return;
    }
    for (const bytes of response.file_descriptor_response.file_descriptor_proto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  };
  for (const service of services) take(await stream.ask({file_containing_symbol: service}), service);
  // Imports the server did not send along: ask for each by name.
  const asked = new Set<string>();
  for (let pending = unresolvedImports(files, asked); pending.length > 0; pending = unresolvedImports(files, asked)) {
    for (const name of pending) {
      asked.add(name);
      take(await stream.ask({file_by_filename: name}), name);
    }
  }
  return {services, files: [...files.values()], missing};
}

function unresolvedImports(files: Map<string, FileDescriptorProto>, asked: Set<string>): string[] {
  const wanted = new Set<string>();
  for (const file of files.values())
    for (const dependency of file.dependency)
      if (!files.has(dependency) && !asked.has(dependency)) wanted.add(dependency);
  return [...wanted];
}

function reflectionError(error: {error_code: number; error_message: string}): Error {
  return Object.assign(new Error(error.error_message), {code: error.error_code});
}
