import {createRequire} from 'node:module';
import path from 'node:path';
import {fromBinary} from '@bufbuild/protobuf';
import {FileDescriptorProtoSchema, type FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import {
  Metadata,
  status as GrpcStatus,
  type Client,
  type ClientDuplexStream,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
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

type ReflectionRequest = {host?: string} & (
  {list_services: string} | {file_containing_symbol: string} | {file_by_filename: string}
);
interface ReflectionResponse {
  list_services_response?: {service: Array<{name: string}>};
  file_descriptor_response?: {file_descriptor_proto: Buffer[]};
  error_response?: {error_code: number; error_message: string};
}

const REFLECTION_PROTOS = path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json'));
const VERSIONS = ['v1', 'v1alpha'] as const;

type ReflectionMethod = MethodDefinition<ReflectionRequest, ReflectionResponse>;
let methods: Record<(typeof VERSIONS)[number], ReflectionMethod> | undefined;

/** ServerReflectionInfo of each version: path and (de)serializers, to call on the target's own channel. */
function reflectionMethods() {
  methods ??= Object.fromEntries(
    VERSIONS.map((version) => {
      const file = path.join(REFLECTION_PROTOS, 'build', 'proto', 'grpc', 'reflection', version, 'reflection.proto');
      const definition = protoLoader.loadSync(file, {
        keepCase: true,
        longs: String,
        enums: String,
        defaults: true,
        oneofs: true,
      });
      const service = definition[`grpc.reflection.${version}.ServerReflection`] as Record<string, ReflectionMethod>;
      return [version, service.ServerReflectionInfo];
    }),
  ) as NonNullable<typeof methods>;
  return methods;
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

  constructor(client: Client, method: ReflectionMethod, metadata: Metadata, deadline: number) {
    this.call = client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
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
    const stream = new ReflectionStream(
      options.client,
      reflectionMethods()[version],
      options.metadata,
      options.deadline,
    );
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
