import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import type {FileRegistry} from '@bufbuild/protobuf';
import {cors, createContextValues, type ConnectRouter} from '@connectrpc/connect';
import type {FastifyRequest} from 'fastify';
import {fastifyConnectPlugin} from '@connectrpc/connect-fastify';
import type {GrpcLimits} from '../../server-kit/grpc/limits.js';
import type {HttpServer} from '../../server-kit/http/server.js';
import {GrpcBridge, HTTP_REQUEST_ID} from './grpc-bridge.js';

/** CORS for browsers calling with connect-web: the protocol's request headers, and the status it sends in headers. */
export const CONNECT_CORS_HEADERS = {allowed: cors.allowedHeaders, exposed: cors.exposedHeaders};

export interface ConnectApiOptions {
  registry: FileRegistry;
  services: string[];
  /** The unix socket the gateway's gRPC server answers on (privateGrpcSocket). */
  socketPath: string;
  forwardedHeaders: string[];
  /** The native port's limits: message size, calls per connection. */
  grpcLimits: GrpcLimits;
  /** The HTTP port's connection cap: no more calls than that can be open at once. */
  maxHttpConnections: number;
}

/**
 * Serves `services` over the Connect protocol and gRPC-Web on the HTTP server, at the standard
 * `/<package>.<Service>/<Method>` paths, through the gateway's gRPC server (grpc-bridge.ts).
 * Returns the bridge, to be closed after the HTTP server.
 */
export function addConnectRoutes(http: HttpServer, options: ConnectApiOptions): GrpcBridge {
  const callsPerChannel = options.grpcLimits.maxConcurrentStreams;
  const bridge = new GrpcBridge({
    registry: options.registry,
    services: options.services,
    target: `unix:${options.socketPath}`,
    forwardedHeaders: options.forwardedHeaders,
    callsPerChannel,
    maxChannels: Math.ceil(options.maxHttpConnections / callsPerChannel),
  });
  const connectOptions = {
    routes: (router: ConnectRouter) => bridge.routes(router),
    // gRPC itself has its own port (HTTP/2); this one is HTTP/1.1.
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: options.grpcLimits.maxReceiveMessageBytes,
    // No compressed requests: a small body must not inflate into a large one here.
    acceptCompression: [],
    jsonOptions: {registry: options.registry},
    contextValues: (request: FastifyRequest) => createContextValues().set(HTTP_REQUEST_ID, request.id),
  };
  // In a context of its own: the plugin adds a parser for application/json, which would clash with REST's.
  void http.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    await scope.register(fastifyConnectPlugin, connectOptions);
  });
  return bridge;
}

/** A unix socket path in a directory only this user can enter, for the gRPC server's in-process callers. */
export async function privateGrpcSocket(): Promise<{path: string; remove(): Promise<void>}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-gateway-'));
  return {path: path.join(dir, 'grpc.sock'), remove: () => rm(dir, {recursive: true, force: true})};
}
