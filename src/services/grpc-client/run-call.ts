import {createRegistry, type DescMethod, type JsonValue, type Registry} from '@bufbuild/protobuf';
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
import type {Schema} from './schema.js';
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
  schema: Schema & {cachedAt?: string};
  registry: Registry;
  callHeaders: Array<[string, string]>;
}

/** The target and its schema (reflection, cached; or --proto files). */
export async function openTarget(options: ConnectionOptions): Promise<Connected> {
  const target = await resolveTarget(options);
  const callHeaders = options.headers.map(parseHeader);
  if (options.token) callHeaders.push(['authorization', `Bearer ${options.token}`]);
  const reflectHeaders = options.reflectHeaders?.length ? options.reflectHeaders.map(parseHeader) : callHeaders;
  const schema = await loadSchema({
    target,
    reflectHeaders,
    refresh: options.refresh,
    timeoutMs: options.connectTimeoutMs + 10_000,
    connectTimeoutMs: options.connectTimeoutMs,
    protoFiles: options.protoFiles,
    importDirs: options.importDirs,
  });
  return {target, schema, registry: schema.registry, callHeaders};
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
  let connected = await openTarget(options);
  let method: DescMethod;
  try {
    method = options.method
      ? findMethod(connected.schema, options.method)
      : await (await prompter()).method(connected.schema);
  } catch (error) {
    // A name the cached schema does not know may be new on the server: ask it once more.
    if (!connected.schema.cachedAt || !options.method) throw error;
    connected = await openTarget({...options, refresh: true});
    method = findMethod(connected.schema, options.method);
  }
  const {schema, registry} = connected;
  let requests: JsonValue[];
  if (options.data !== undefined) requests = await readRequestData(options.data, () => terminal.readStdin());
  else if (terminal.interactive) requests = await (await prompter()).request(method, registry);
  // Without -d and without a terminal: an empty request, as grpcurl sends (stdin only with -d @-).
  else requests = [];
  // No request at all is an empty message, as grpcurl sends (unary and server streaming need one).
  if (requests.length === 0 && (method.methodKind === 'unary' || method.methodKind === 'server_streaming'))
    requests = [{}];

  const messages: JsonValue[] = [];
  let unknownFields = false;
  let headers: Record<string, string[]> = {};
  const result = await invoke({
    target: connected.target,
    method,
    requests: requests.map((request) => encodeRequest(method, request, registry)),
    metadata: metadataOf(connected.callHeaders),
    timeoutMs: options.timeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    registry,
    output: options,
    events: {
      unknownFields: () => {
        unknownFields = true;
      },
      headers: (metadata) => {
        headers = metadataObject(metadata);
        if (options.verbose && !options.json) terminal.out(`Response headers:\n${formatMetadata(headers)}\n`);
      },
      message: (message) => {
        messages.push(message);
        if (!options.json) terminal.out(`${JSON.stringify(message, null, 2)}\n`);
      },
    },
  });
  const {status} = result;
  // google.rpc details decode even when the server's schema lacks them; the server's types win.
  const detailTypes = status.code === 0 ? registry : createRegistry((await loadContractSet()).registry, registry);
  const trailers = metadataObject(status.metadata);
  delete trailers['grpc-status-details-bin'];
  if (options.json) {
    terminal.out(
      `${JSON.stringify({status: describeStatus(status, detailTypes), headers, messages, trailers}, null, 2)}\n`,
    );
  } else {
    if (options.verbose) terminal.out(`Response trailers:\n${formatMetadata(trailers)}\n`);
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
