import {
  Client,
  credentials,
  Metadata,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type Message,
} from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  createContextKey,
  type ConnectRouter,
  type HandlerContext,
  type MethodImpl,
} from '@connectrpc/connect';
import {REQUEST_ID_KEY} from '../../server-kit/grpc/interceptors.js';

/** The HTTP request's id (x-request-id, taken or made by the HTTP server): the gRPC call gets the same. */
export const HTTP_REQUEST_ID = createContextKey<string | undefined>(undefined);

export interface GrpcBridgeOptions {
  registry: FileRegistry;
  /** The services served, by full name (gateway.v1.QueueService). */
  services: string[];
  /** The grpc-js address of the gateway's own gRPC server (`unix:/path`). */
  target: string;
  /** Request headers passed on as metadata (lower case); every other header stays here. */
  forwardedHeaders: string[];
  /** Calls one connection may carry at once: the gRPC server's max concurrent streams. */
  callsPerChannel: number;
  /** Connections at most; a call past callsPerChannel × maxChannels is RESOURCE_EXHAUSTED. */
  maxChannels: number;
}

/**
 * Connect and gRPC-Web calls served by the gateway's own gRPC server, in this process: each call is
 * passed on as a gRPC call (the request's bytes, the caller's authorization and request ids as
 * metadata, its deadline and cancellation), so auth, errors, limits and metrics are the native
 * port's by construction. Its status comes back as a ConnectError with the same code, message and
 * google.rpc details.
 */
export class GrpcBridge {
  private readonly channels: Array<{client: Client; calls: number}> = [];
  private readonly statusSchema: DescMessage;

  constructor(private readonly options: GrpcBridgeOptions) {
    const status = options.registry.getMessage('google.rpc.Status');
    if (!status) throw new Error('google.rpc.Status is missing from the compiled contracts');
    this.statusSchema = status;
  }

  /** Registers every method of the services on a Connect router. */
  routes(router: ConnectRouter): void {
    for (const name of this.options.services) {
      const service = this.options.registry.getService(name);
      if (!service) throw new Error(`${name} is not in the compiled contracts`);
      for (const method of service.methods) {
        // The router's types want a generated service's; these methods come from the registry at run time.
        if (method.methodKind === 'unary') {
          const impl = (request: Message, context: HandlerContext) => this.unary(method, request, context);
          router.rpc(method, impl as MethodImpl<typeof method>);
        } else if (method.methodKind === 'server_streaming') {
          const impl = (request: Message, context: HandlerContext) => this.serverStream(method, request, context);
          router.rpc(method, impl as MethodImpl<typeof method>);
        }
        // Client and bidi streams need HTTP/2 end to end, which browsers' fetch does not give: not served.
      }
    }
  }

  close(): void {
    for (const channel of this.channels.splice(0)) channel.client.close();
  }

  private async unary(method: DescMethod, request: Message, context: HandlerContext) {
    const channel = this.acquire();
    try {
      const answer = await new Promise<Buffer>((resolve, reject) => {
        const call = channel.client.makeUnaryRequest(
          ...this.callOf(method, request, context),
          (error: ServiceError | null, response?: Buffer) => (error ? reject(error) : resolve(response!)),
        );
        this.follow(call, context);
        const cancel = () => call.cancel();
        context.signal.addEventListener('abort', cancel, {once: true});
        call.once('status', () => context.signal.removeEventListener('abort', cancel));
      });
      return fromBinary(method.output, answer);
    } catch (error) {
      throw this.connectError(error);
    } finally {
      channel.calls--;
    }
  }

  private async *serverStream(method: DescMethod, request: Message, context: HandlerContext) {
    const channel = this.acquire();
    const call = channel.client.makeServerStreamRequest(...this.callOf(method, request, context));
    this.follow(call, context);
    const cancel = () => call.cancel();
    context.signal.addEventListener('abort', cancel, {once: true});
    try {
      for await (const message of call as AsyncIterable<Buffer>) yield fromBinary(method.output, message);
    } catch (error) {
      throw this.connectError(error);
    } finally {
      context.signal.removeEventListener('abort', cancel);
      // The caller stopped reading (or went away): end the gRPC call too.
      call.cancel();
      channel.calls--;
    }
  }

  /** A connection with room for one more call, opened when every open one is full. */
  private acquire(): {client: Client; calls: number} {
    let channel = this.channels.find((candidate) => candidate.calls < this.options.callsPerChannel);
    if (!channel) {
      if (this.channels.length >= this.options.maxChannels)
        throw new ConnectError('The server has too many calls open; try again later.', Code.ResourceExhausted);
      // A pool of its own per client, or grpc-js would share one connection between them all.
      channel = {
        client: new Client(this.options.target, credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.max_receive_message_length': -1,
        }),
        calls: 0,
      };
      this.channels.push(channel);
    }
    channel.calls++;
    return channel;
  }

  /** A grpc-js call's arguments: the path, bytes passed through as they are, metadata and deadline. */
  private callOf(method: DescMethod, request: Message, context: HandlerContext) {
    const bytes = Buffer.from(toBinary(method.input, request));
    return [
      pathOf(method),
      passBytes,
      passBytes,
      bytes,
      this.metadataOf(context),
      {deadline: deadlineOf(context)},
    ] as const;
  }

  private metadataOf(context: HandlerContext): Metadata {
    const metadata = new Metadata();
    for (const name of this.options.forwardedHeaders) {
      const value = context.requestHeader.get(name);
      if (value !== null) metadata.set(name, value);
    }
    const requestId = context.values.get(HTTP_REQUEST_ID);
    if (requestId) metadata.set(REQUEST_ID_KEY, requestId);
    return metadata;
  }

  /** The gRPC server's headers and trailers become the Connect answer's. */
  private follow(call: ClientUnaryCall | ClientReadableStream<Buffer>, context: HandlerContext) {
    call.on('metadata', (metadata) => copyMetadata(metadata, context.responseHeader));
    call.on('status', (status) => copyMetadata(status.metadata, context.responseTrailer));
  }

  /** A gRPC status as a ConnectError: the same code and message, the google.rpc details as they came. */
  private connectError(error: unknown): ConnectError {
    if (error instanceof ConnectError) return error;
    const status = error as Partial<ServiceError>;
    if (typeof status.code !== 'number') return new ConnectError('The call failed inside the gateway.', Code.Internal);
    // Its trailers are already the answer's (follow): the error carries the code, message and details only.
    const connectError = new ConnectError(status.details ?? '', status.code as number);
    const details = status.metadata?.get('grpc-status-details-bin')[0];
    if (details instanceof Buffer) {
      const decoded = fromBinary(this.statusSchema, details) as unknown as {
        details: Array<{typeUrl: string; value: Uint8Array}>;
      };
      for (const detail of decoded.details)
        connectError.details.push({
          type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf('/') + 1),
          value: detail.value,
        });
    }
    return connectError;
  }
}

const passBytes = (bytes: Buffer) => bytes;

const pathOf = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/** The caller's deadline (connect-timeout-ms or grpc-timeout), or none. */
function deadlineOf(context: HandlerContext): number {
  const timeoutMs = context.timeoutMs();
  return timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
}

/** Metadata a gRPC server sends, as HTTP headers: its own names, binary values in base64; transport headers left out. */
function copyMetadata(metadata: Metadata, headers: Headers): void {
  for (const [name, values] of Object.entries(metadata.toJSON())) {
    if (name.startsWith('grpc-') || name === 'content-type' || name === 'date') continue;
    for (const value of values) headers.append(name, Buffer.isBuffer(value) ? value.toString('base64') : value);
  }
}
