import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {REPO_ROOT} from './cli.js';

type AnyClient = grpc.Client & Record<string, any>;

const REFLECTION_PROTO_DIR = path.join(REPO_ROOT, 'node_modules', '@grpc', 'reflection', 'build', 'proto');
const HEALTH_PROTO = path.join(REPO_ROOT, 'node_modules', 'grpc-health-check', 'proto', 'health', 'v1', 'health.proto');
const RAW_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The services a server lists over grpc.reflection.<version>.ServerReflection (list_services), as
 * grpcurl `list` asks for them; a client written from the protos that ship with @grpc/reflection.
 */
export function listServices(address: string, version: 'v1' | 'v1alpha' = 'v1', timeoutMs = 5000): Promise<string[]> {
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    ...RAW_LOADER_OPTIONS,
    includeDirs: [REFLECTION_PROTO_DIR],
  });
  const Client = grpc.makeGenericClientConstructor(
    definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition,
    'ServerReflection',
  );
  const client = new Client(address, grpc.credentials.createInsecure()) as AnyClient;
  return new Promise<string[]>((resolve, reject) => {
    const call = client.ServerReflectionInfo({deadline: Date.now() + timeoutMs}) as grpc.ClientDuplexStream<
      unknown,
      Record<string, any>
    >;
    const names: string[] = [];
    call.on('data', (response) => {
      if (response.error_response) reject(new Error(`reflection error: ${JSON.stringify(response.error_response)}`));
      for (const service of response.list_services_response?.service ?? []) names.push(service.name);
    });
    call.on('error', reject);
    call.on('end', () => resolve(names));
    call.write({host: '', list_services: ''});
    call.end();
  }).finally(() => client.close());
}

/** grpc.health.v1.Health/Check for one service ('' for the whole server): the status name, or the error. */
export function healthStatus(address: string, service = '', timeoutMs = 5000): Promise<string> {
  const definition = protoLoader.loadSync(HEALTH_PROTO, RAW_LOADER_OPTIONS);
  const Client = grpc.makeGenericClientConstructor(
    definition['grpc.health.v1.Health'] as grpc.ServiceDefinition,
    'Health',
  );
  const client = new Client(address, grpc.credentials.createInsecure()) as AnyClient;
  return new Promise<string>((resolve, reject) => {
    client.Check(
      {service},
      {deadline: Date.now() + timeoutMs},
      (error: grpc.ServiceError | null, response: {status: string}) =>
        error ? reject(error) : resolve(response.status),
    );
  }).finally(() => client.close());
}
