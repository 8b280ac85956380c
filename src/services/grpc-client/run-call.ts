import {createRegistry, type DescMethod, type JsonValue, type Registry} from '@bufbuild/protobuf';
import {Client, status as GrpcStatus} from '@grpc/grpc-js';
import {usageError} from '../errors.js';
import {
  decodeDetails,
  describeStatus,
  encodeRequest,
  exitCodeOf,
  findMethod,
  invoke,
  metadataObject,
  metadataOf,
  parseHeader,
  readRequestData,
  type OutputOptions,
} from './invoke.js';
import {loadContractSet} from '../contracts.js';
import {grpcCodeName} from '../grpc-codes.js';
import {loadSchema} from './schema-source.js';
import {schemaChanges, type Schema} from './schema.js';
import {ReconnectWatch} from './reconnect-watch.js';
import {resolveTarget, type Target, type TargetOptions} from './target.js';

export interface ConnectionOptions extends TargetOptions {
  /** `-H 'k: v'`: sent with the call, and with reflection unless reflectHeaders are given. */
  headers: string[];
  reflectHeaders?: string[];
  token?: string;
  protoFiles?: string[];
  importDirs?: string[];
  refresh: boolean;
  connectTimeoutMs: number;
}

export interface Terminal {
  out(text: string): void;
  err(text: string): void;
  /** Standard input, read whole (for -d @-, or requests piped in). */
  readStdin(): Promise<string>;
  /** Prompts are possible (stdin and stdout are a terminal). */
  interactive: boolean;
}

export interface Connected {
  target: Target;
  /** Replaced by reload(). */
  schema: Schema & {cachedAt?: string};
  /** -H and --token headers, sent with every call. */
  callHeaders: Array<[string, string]>;
  /** The one grpc-js channel of this target: reflection and every call go through it. */
  client: Client;
  /** How long a call waits for the channel to connect (--connect-timeout). */
  connectTimeoutMs: number;
  /**
   * Asks the server for its schema again over the same channel (or re-reads the --proto files),
   * writes the cache, replaces schema and registry, and says what changed.
   */
  reload(): Promise<{changed: boolean; summary: string}>;
  /** Calls the listener each time the channel is READY again after it lost its connection; returns the unsubscribe. */
  onReconnect(listener: () => void): () => void;
  /** Closes the channel; safe twice. */
  close(): void;
}

/** The target, its one channel, and its schema (reflection, cached; or --proto files). */
export async function openTarget(options: ConnectionOptions): Promise<Connected> {
  const target = await resolveTarget(options);
  const callHeaders = options.headers.map(parseHeader);
  if (options.token) callHeaders.push(['authorization', `Bearer ${options.token}`]);
  const reflectHeaders = options.reflectHeaders?.length ? options.reflectHeaders.map(parseHeader) : callHeaders;
  const client = new Client(target.address, target.credentials, target.channelOptions);
  const source = {
    target,
    client,
    reflectHeaders,
    timeoutMs: options.connectTimeoutMs + 10_000,
    connectTimeoutMs: options.connectTimeoutMs,
    protoFiles: options.protoFiles,
    importDirs: options.importDirs,
  };
  let schema: Schema & {cachedAt?: string};
  try {
    schema = await loadSchema({...source, refresh: options.refresh});
  } catch (error) {
    client.close();
    throw error;
  }
  const reconnects = new ReconnectWatch(client);
  let closed = false;
  const connected: Connected = {
    target,
    schema,
    callHeaders,
    client,
    connectTimeoutMs: options.connectTimeoutMs,
    async reload() {
      const reloaded = await loadSchema({...source, refresh: true});
      const changes = schemaChanges(connected.schema, reloaded);
      connected.schema = reloaded;
      return {
        changed: changes.length > 0,
        summary: changes.length
          ? `The schema changed:\n${changes.map((change) => `  ${change}`).join('\n')}`
          : `The schema did not change (${reloaded.services.length} services).`,
      };
    },
    onReconnect: (listener) => reconnects.add(listener),
    close() {
      if (closed) return;
      closed = true;
      reconnects.close();
      client.close();
    },
  };
  return connected;
}

export interface CallRunOptions extends ConnectionOptions, OutputOptions {
  method?: string;
  data?: string;
  timeoutMs?: number;
  verbose: boolean;
  json: boolean;
}

/** Prompts for what was not given, on a terminal: the method, then the request field by field. */
export interface Prompter {
  method(schema: Schema): Promise<DescMethod>;
  request(method: DescMethod, registry: Registry): Promise<JsonValue[]>;
}

/**
 * `tacos call`: finds the method, gets the request (-d, stdin, or prompts), calls it and prints the
 * responses as they arrive, then the status. Returns the exit code: 0, or 64 + the gRPC code.
 */
export async function runCall(
  options: CallRunOptions,
  terminal: Terminal,
  prompter: () => Promise<Prompter>,
): Promise<number> {
  if (!options.method && !terminal.interactive)
    throw usageError('Name the method to call, e.g. QueueService.JoinQueue.', '`tacos list` shows the services.');
  const connected = await openTarget(options);
  try {
    let method: DescMethod;
    try {
      method = options.method
        ? findMethod(connected.schema, options.method)
        : await (await prompter()).method(connected.schema);
    } catch (error) {
      // A name the cached schema does not know may be new on the server: ask it once more.
      if (!connected.schema.cachedAt || !options.method) throw error;
      await connected.reload();
      method = findMethod(connected.schema, options.method);
    }
    let requests: JsonValue[];
    if (options.data !== undefined) requests = await readRequestData(options.data, () => terminal.readStdin());
    else if (terminal.interactive) requests = await (await prompter()).request(method, connected.schema.registry);
    // Without -d and without a terminal: an empty request, as grpcurl sends (stdin only with -d @-).
    else requests = [];
    const {timeoutMs, verbose, json, emitDefaults, protoNames} = options;
    return await callMethod(
      connected,
      {method, requests, timeoutMs, verbose, json, emitDefaults, protoNames},
      terminal,
    );
  } finally {
    connected.close();
  }
}

export interface CallRequest extends OutputOptions {
  method: DescMethod;
  /** [] for a unary or server-streaming method means one empty message. */
  requests: JsonValue[];
  timeoutMs?: number;
  /** Response headers and trailers printed. */
  verbose: boolean;
  json: boolean;
  /** Metadata added to the target's callHeaders for this call only. */
  headers?: Array<[string, string]>;
  /** Aborting cancels the call in flight: "Cancelled." is printed and the exit code is 64 + CANCELLED. */
  signal?: AbortSignal;
}

/**
 * Calls and prints as `tacos call` prints: messages as they arrive, the ERROR block, notes on a
 * stale cache. Returns the exit code: 0, or 64 + the gRPC code.
 */
export async function callMethod(
  connected: Connected,
  request: CallRequest,
  terminal: Pick<Terminal, 'out' | 'err'>,
): Promise<number> {
  const {method} = request;
  const {schema} = connected;
  const {registry} = schema;
  // No request at all is an empty message, as grpcurl sends (unary and server streaming need one).
  const requests =
    request.requests.length === 0 && (method.methodKind === 'unary' || method.methodKind === 'server_streaming')
      ? [{}]
      : request.requests;
  const messages: JsonValue[] = [];
  let unknownFields = false;
  let headers: Record<string, string[]> = {};
  const {status} = await invoke({
    client: connected.client,
    target: connected.target,
    method,
    requests: requests.map((one) => encodeRequest(method, one, registry)),
    metadata: metadataOf([...connected.callHeaders, ...(request.headers ?? [])]),
    timeoutMs: request.timeoutMs,
    connectTimeoutMs: connected.connectTimeoutMs,
    registry,
    output: request,
    signal: request.signal,
    events: {
      unknownFields: () => {
        unknownFields = true;
      },
      headers: (metadata) => {
        headers = metadataObject(metadata);
        if (request.verbose && !request.json) terminal.out(`Response headers:\n${formatMetadata(headers)}\n`);
      },
      message: (message) => {
        messages.push(message);
        if (!request.json) terminal.out(`${JSON.stringify(message, null, 2)}\n`);
      },
    },
  });
  if (status.code === GrpcStatus.CANCELLED && request.signal?.aborted) {
    terminal.err('Cancelled.\n');
    return exitCodeOf(status.code);
  }
  // google.rpc details decode even when the server's schema lacks them; the server's types win.
  const detailTypes = status.code === 0 ? registry : createRegistry((await loadContractSet()).registry, registry);
  const trailers = metadataObject(status.metadata);
  delete trailers['grpc-status-details-bin'];
  if (request.json) {
    terminal.out(
      `${JSON.stringify({status: describeStatus(status, detailTypes), headers, messages, trailers}, null, 2)}\n`,
    );
  } else {
    if (request.verbose) terminal.out(`Response trailers:\n${formatMetadata(trailers)}\n`);
    if (status.code !== 0) terminal.err(formatError(status.code, status.details, decodeDetails(status, detailTypes)));
    if (status.code === 12 && schema.cachedAt)
      terminal.err(`The schema was cached at ${schema.cachedAt}: if the server changed, rerun with --refresh.\n`);
    if (unknownFields) {
      terminal.err(
        `The response has fields the ${schema.cachedAt ? `schema cached at ${schema.cachedAt}` : 'schema'} does not know; they are not shown${schema.cachedAt ? ' (rerun with --refresh)' : ''}.\n`,
      );
    }
  }
  return exitCodeOf(status.code);
}

function formatMetadata(metadata: Record<string, string[]>): string {
  const lines = Object.entries(metadata).flatMap(([key, values]) => values.map((value) => `  ${key}: ${value}`));
  return lines.length ? lines.join('\n') : '  (none)';
}

/** As grpcurl prints it: `ERROR:` then code name and number, message, and each decoded detail. */
function formatError(code: number, message: string, details: JsonValue[]): string {
  const lines = ['ERROR:', `  Code: ${grpcCodeName(code)} (${code})`, `  Message: ${message}`];
  if (details.length) {
    lines.push('  Details:');
    details.forEach((detail, i) =>
      lines.push(`  ${i + 1}) ${JSON.stringify(detail, null, 2).replace(/\n/g, '\n     ')}`),
    );
  }
  return `${lines.join('\n')}\n`;
}
