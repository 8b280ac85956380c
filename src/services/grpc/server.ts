import {readFile} from 'node:fs/promises';
import {
  Server,
  ServerCredentials,
  type ServerInterceptor,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {ReflectionService} from '@grpc/reflection';
import {HealthImplementation, type ServingStatus} from 'grpc-health-check';
import {TacosError, errorMessage} from '../errors.js';
import {CONTRACT_INCLUDE_DIRS, contractSourceFiles, type ContractSet} from './contracts.js';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** How handlers see messages: field names as in the .proto, 64-bit integers and enums as strings. */
export const LOADER_OPTIONS: protoLoader.Options = {keepCase: true, longs: String, enums: String, defaults: true, oneofs: true};

export interface GrpcServiceBinding {
  /** Full name, such as gateway.v1.QueueService. */
  name: string;
  implementation: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  contracts: ContractSet;
  services: GrpcServiceBinding[];
  interceptors: ServerInterceptor[];
  tls?: {certFile: string; keyFile: string};
  /** The variable that sets the port, named when it is taken. */
  portVariable: string;
}

export interface RunningGrpcServer {
  port: number;
  /** Sets the health of one service ('' is the whole server). */
  setHealth(service: string, status: ServingStatus): void;
  /** Waits up to graceMs for calls in flight, then cuts the rest; safe to call twice. */
  close(graceMs: number): Promise<void>;
}

let definition: protoLoader.PackageDefinition | undefined;

/**
 * Handlers' (de)serializers, parsed from the .proto sources: protobufjs turns the map fields of a
 * FileDescriptorSet into repeated entries, which breaks every handler returning a map.
 */
export function packageDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync(contractSourceFiles(), {...LOADER_OPTIONS, includeDirs: CONTRACT_INCLUDE_DIRS});
  return definition;
}

/**
 * A gRPC server with the given services, grpc.health.v1 (overall and per service) and server
 * reflection v1 and v1alpha. Reflection serves the compiler's own file descriptors (original names,
 * dependencies, map entries, comments), so strict clients such as grpcurl and Evans accept them.
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const definition = packageDefinition();
  const server = new Server({interceptors: options.interceptors});
  const names = options.services.map((service) => service.name);
  for (const service of options.services) {
    const serviceDefinition = definition[service.name] as ServiceDefinition | undefined;
    if (!serviceDefinition) throw new Error(`${service.name} is not in the compiled contracts`);
    server.addService(serviceDefinition, service.implementation);
  }
  const health = new HealthImplementation(Object.fromEntries(['', ...names].map((name) => [name, 'SERVING' as ServingStatus])));
  health.addToServer(server);
  // The reflection library indexes whatever file descriptors it is handed; hand it buf's.
  const reflectionInput = {contracts: {format: 'FileDescriptorSet', fileDescriptorProtos: options.contracts.fileBytes}};
  new ReflectionService(reflectionInput as unknown as protoLoader.PackageDefinition, {services: [...names, HEALTH_SERVICE]}).addToServer(server);

  const credentials = options.tls ? await tlsCredentials(options.tls) : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort)));
  }).catch((error: unknown) => {
    server.forceShutdown();
    throw new TacosError(`Cannot serve gRPC on ${options.host}:${options.port}: ${errorMessage(error)}`, {
      hint: `Another process may hold the port: pick another with ${options.portVariable}, or stop that process.`,
      code: 'PORT_IN_USE',
      cause: error,
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    setHealth: (service, status) => health.setStatus(service, status),
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        for (const name of ['', ...names]) health.setStatus(name, 'NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

async function tlsCredentials(tls: {certFile: string; keyFile: string}): Promise<ServerCredentials> {
  try {
    const [cert, key] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile)]);
    return ServerCredentials.createSsl(null, [{cert_chain: cert, private_key: key}], false);
  } catch (error) {
    throw new TacosError(`Cannot read the gRPC TLS certificate or key: ${errorMessage(error)}`, {
      hint: 'Point GRPC_TLS_CERT and GRPC_TLS_KEY at PEM files, or set GRPC_USE_TLS=false.',
      code: 'INVALID_CONFIG',
      cause: error,
    });
  }
}
