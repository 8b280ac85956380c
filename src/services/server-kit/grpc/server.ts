import {readFile} from 'node:fs/promises';
import type {Http2Server} from 'node:http2';
import {createServer as createNetServer, type Server as NetServer} from 'node:net';
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
import {TacosError, errorMessage} from '../../errors.js';
import {guardConnections} from './connection-guard.js';
import {CONTRACT_INCLUDE_DIRS, contractSourceFiles, type ContractSet} from '../../contracts.js';
import {UndecodableRequest, requestCheckInterceptor} from './interceptors.js';
import {DEFAULT_GRPC_LIMITS, type GrpcLimits, type GrpcRefusal} from './limits.js';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** How handlers see messages: field names as in the .proto, 64-bit integers and enums as strings. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface GrpcServiceBinding {
  /** Full name, such as gateway.v1.QueueService. */
  name: string;
  implementation: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  host: string;
  /** The public TCP port (0: any free one); absent: none, the server answers on `localSocket` only. */
  port?: number;
  /**
   * A unix socket path for callers in this process (the gateway's Connect bridge), served beside the
   * port: the same services and interceptors, without the connection guard (the caller is trusted).
   */
  localSocket?: string;
  contracts: ContractSet;
  services: GrpcServiceBinding[];
  interceptors: ServerInterceptor[];
  tls?: {certFile: string; keyFile: string};
  /** The variable that sets the port, named when it is taken. */
  portVariable: string;
  limits?: GrpcLimits;
  /** Told of every refusal (metrics). */
  onRefusal?: (reason: GrpcRefusal) => void;
}

export interface RunningGrpcServer {
  /** 0 when the server has no public port (`localSocket` only). */
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
  const limits = options.limits ?? DEFAULT_GRPC_LIMITS;
  const refused = options.onRefusal ?? (() => undefined);
  const server = new RequestCheckingServer({
    interceptors: [...options.interceptors, requestCheckInterceptor(refused)],
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': limits.maxConnectionAgeGraceMs,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.pingTimeoutMs,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
  });
  const names = options.services.map((service) => service.name);
  for (const service of options.services) {
    const serviceDefinition = definition[service.name] as ServiceDefinition | undefined;
    if (!serviceDefinition) throw new Error(`${service.name} is not in the compiled contracts`);
    server.addService(serviceDefinition, service.implementation);
  }
  const health = new HealthImplementation(Object.fromEntries(['', ...names].map((name) => [name, 'SERVING'])));
  health.addToServer(server);
  // The reflection library indexes whatever file descriptors it is handed; hand it buf's.
  const reflectionInput = {contracts: {format: 'FileDescriptorSet', fileDescriptorProtos: options.contracts.fileBytes}};
  new ReflectionService(reflectionInput as unknown as protoLoader.PackageDefinition, {
    services: [...names, HEALTH_SERVICE],
  }).addToServer(server);

  const credentials = options.tls ? await tlsCredentials(options.tls) : ServerCredentials.createInsecure();
  const injector = injectorWithServer(server, credentials);
  const guarded = guardConnections(
    injector.http2Server,
    (socket) => injector.injectConnection(socket),
    limits,
    refused,
  );
  // Plaintext whatever the port's TLS: the socket is private to this user, and the caller is in this process.
  const localInjector = options.localSocket
    ? server.createConnectionInjector(ServerCredentials.createInsecure())
    : undefined;
  const local = localInjector && createNetServer((socket) => localInjector.injectConnection(socket));
  const listening: Array<Promise<unknown>> = [];
  if (local) listening.push(listen(local, {path: options.localSocket, exclusive: true}));
  const {port} = options;
  if (port !== undefined) listening.push(listen(guarded.listener, {port, host: options.host}));
  await Promise.all(listening).catch((error: unknown) => {
    local?.close();
    guarded.listener.close();
    guarded.stop();
    server.forceShutdown();
    const where = port === undefined ? options.localSocket : `${options.host}:${port}`;
    throw new TacosError(`Cannot serve gRPC on ${where}: ${errorMessage(error)}`, {
      hint: `Another process may hold the port: pick another with ${options.portVariable}, or stop that process.`,
      code: 'PORT_IN_USE',
      cause: error,
    });
  });
  const address = guarded.listener.address();
  const boundPort = port === undefined ? 0 : typeof address === 'object' && address ? address.port : port;

  let closing: Promise<void> | undefined;
  return {
    port: boundPort,
    setHealth: (service, status) => health.setStatus(service, status),
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        for (const name of ['', ...names]) health.setStatus(name, 'NOT_SERVING');
        if (port !== undefined) guarded.listener.close();
        local?.close();
        const done = () => {
          guarded.stop();
          resolve();
        };
        const timer = setTimeout(() => {
          server.forceShutdown();
          done();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          done();
        });
      });
      return closing;
    },
  };
}

function listen(listener: NetServer, options: {port?: number; host?: string; path?: string; exclusive?: boolean}) {
  return new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options, () => {
      listener.off('error', reject);
      resolve();
    });
  });
}

/**
 * A request that does not decode reaches the interceptors as an UndecodableRequest, to be answered
 * INVALID_ARGUMENT there: grpc-js answers a deserializer's throw with INTERNAL, before any interceptor.
 */
class RequestCheckingServer extends Server {
  override register<RequestType, ResponseType>(
    ...[name, handler, serialize, deserialize, type]: Parameters<
      typeof Server.prototype.register<RequestType, ResponseType>
    >
  ): boolean {
    const checked = (bytes: Buffer): RequestType => {
      try {
        return deserialize(bytes);
      } catch (error) {
        // The handler never sees it: the request-check interceptor answers first.
        return new UndecodableRequest(errorMessage(error)) as RequestType;
      }
    };
    return super.register(name, handler, serialize, checked, type);
  }
}

/**
 * grpc-js's connection injector and the HTTP/2 server behind it: the guard needs that server's
 * session and stream events, which grpc-js keeps in a private map (as of 1.14; checked here).
 */
function injectorWithServer(server: Server, credentials: ServerCredentials) {
  const servers = (server as unknown as {http2Servers?: Map<Http2Server, unknown>}).http2Servers;
  if (!(servers instanceof Map))
    throw new Error(
      '@grpc/grpc-js no longer keeps its HTTP/2 servers in http2Servers: update the gRPC connection guard',
    );
  const before = new Set(servers.keys());
  const injector = server.createConnectionInjector(credentials);
  const http2Server = [...servers.keys()].find((candidate) => !before.has(candidate));
  if (!http2Server)
    throw new Error(
      '@grpc/grpc-js made no HTTP/2 server for the connection injector: update the gRPC connection guard',
    );
  return {injectConnection: injector.injectConnection.bind(injector), http2Server};
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
