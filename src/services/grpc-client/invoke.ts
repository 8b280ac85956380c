import {readFile} from 'node:fs/promises';
import {
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescMethod,
  type JsonObject,
  type JsonValue,
  type Registry,
} from '@bufbuild/protobuf';
import {anyUnpack, type Any} from '@bufbuild/protobuf/wkt';
import {Metadata, status as GrpcStatus, type Client, type ServiceError, type StatusObject} from '@grpc/grpc-js';
import {errorMessage, usageError} from '../errors.js';
import {closestNames} from '../closest-names.js';
import {grpcCodeName} from '../grpc-codes.js';
import type {Schema} from './schema.js';
import {connect, type Target} from './target.js';

/** The exit code of a call that ended with gRPC status `code` (as grpcurl: 64 + code). */
export const exitCodeOf = (code: number) => (code === GrpcStatus.OK ? 0 : 64 + code);

/**
 * A method by any name users type: `pkg.Svc/Method`, `pkg.Svc.Method`, `Svc.Method` or a bare
 * `Method` when unique. Unknown or ambiguous names list the candidates, closest first (exit 2).
 */
export function findMethod(schema: Schema, name: string): DescMethod {
  const all = schema.services.flatMap((service) => service.methods);
  const wanted = name.replace('/', '.').replace(/^\./, '');
  const full = (method: DescMethod) => `${method.parent.typeName}.${method.name}`;
  const exact = all.filter((method) => full(method) === wanted);
  const matches = exact.length ? exact : all.filter((method) => full(method).endsWith(`.${wanted}`));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw usageError(
      `"${name}" is ambiguous: ${matches.map(full).join(', ')}.`,
      'Name the service too, as Service.Method.',
    );
  }
  const closest = closestNames(all.map(full), wanted);
  throw usageError(
    `No method "${name}" on this server.`,
    closest.length ? `Did you mean: ${closest.join(', ')}? (tacos list shows all)` : 'The server lists no services.',
  );
}

/** The request data of `-d`: JSON, `@file`, or `@-` (stdin); several JSON objects one after another for streams. */
export async function readRequestData(data: string, stdin: () => Promise<string>): Promise<JsonValue[]> {
  let text = data;
  if (data === '@-') text = await stdin();
  else if (data.startsWith('@')) {
    text = await readFile(data.slice(1), 'utf8').catch((error: unknown) => {
      throw usageError(`Cannot read ${data.slice(1)}: ${errorMessage(error)}`);
    });
  }
  return parseJsonSequence(text);
}

/** Concatenated JSON values (`{...} {...}` or one per line), as grpcurl reads streaming input. */
export function parseJsonSequence(text: string): JsonValue[] {
  const values: JsonValue[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    if (char === '{' || char === '[') {
      if (depth === 0) start = i;
      depth++;
    } else if (char === '}' || char === ']') {
      depth--;
      if (depth === 0) values.push(parseOne(text.slice(start, i + 1), values.length));
    } else if (depth === 0 && !/\s/.test(char)) {
      throw usageError(
        `The request data is not JSON objects: unexpected "${char}" at position ${i}.`,
        'Give -d \'{"field": "value"}\'.',
      );
    }
  }
  if (depth !== 0) throw usageError('The request data ends inside a JSON object.', 'Check its braces and quotes.');
  return values;
}

function parseOne(text: string, index: number): JsonValue {
  try {
    return JSON.parse(quoteBigIntegers(text)) as JsonValue;
  } catch (error) {
    throw usageError(`Request ${index + 1} is not valid JSON: ${errorMessage(error)}`);
  }
}

/** A JSON request as the method's input message (names checked, enums and 64-bit integers as proto3 JSON says). */
export function encodeRequest(method: DescMethod, json: JsonValue, registry: Registry): Uint8Array {
  try {
    return toBinary(method.input, fromJson(method.input, json, {registry}));
  } catch (error) {
    throw usageError(
      `The request is not a valid ${method.input.typeName}: ${errorMessage(error)}`,
      `\`tacos call ${method.parent.name}.${method.name} --example\` prints a skeleton.`,
    );
  }
}

export interface OutputOptions {
  emitDefaults: boolean;
  protoNames: boolean;
}

/** A response in the proto3 JSON mapping, fields in declaration order. */
export function decodeResponse(
  desc: DescMessage,
  bytes: Uint8Array,
  registry: Registry,
  output: OutputOptions,
  onUnknownFields?: () => void,
): JsonValue {
  const message = fromBinary(desc, bytes);
  // Fields the schema does not know (a newer server) have no JSON form: say so rather than drop them quietly.
  if ((message as {$unknown?: unknown[]}).$unknown?.length) onUnknownFields?.();
  return declarationOrder(
    desc,
    toJson(desc, message, {registry, alwaysEmitImplicit: output.emitDefaults, useProtoFieldName: output.protoNames}),
    output.protoNames,
  );
}

/** toJson of protobuf-es orders fields by number; proto3 JSON as protojson prints it follows the declaration. */
function declarationOrder(desc: DescMessage, json: JsonValue, protoNames: boolean): JsonValue {
  if (desc.typeName.startsWith('google.protobuf.') || json === null || typeof json !== 'object' || Array.isArray(json))
    return json;
  const ordered: JsonObject = {};
  for (const field of desc.fields) {
    const key = protoNames ? field.name : field.jsonName;
    if (!(key in json)) continue;
    let value = json[key];
    const message =
      field.fieldKind === 'message'
        ? field.message
        : field.fieldKind === 'list' || field.fieldKind === 'map'
          ? field.message
          : undefined;
    if (message && value !== null) {
      if (field.fieldKind === 'list')
        value = (value as JsonValue[]).map((item) => declarationOrder(message, item, protoNames));
      else if (field.fieldKind === 'map')
        value = Object.fromEntries(
          Object.entries(value as JsonObject).map(([k, v]) => [k, declarationOrder(message, v, protoNames)]),
        );
      else value = declarationOrder(message, value, protoNames);
    }
    ordered[key] = value;
  }
  for (const [key, value] of Object.entries(json)) if (!(key in ordered)) ordered[key] = value;
  return ordered;
}

export interface CallEvents {
  headers(metadata: Metadata): void;
  message(json: JsonValue): void;
  /** A response carried fields the schema does not know. */
  unknownFields?: () => void;
}

export interface CallResult {
  status: StatusObject;
}

export interface InvokeOptions {
  /** The target's client (its one channel), and the target to explain a failed connection by. */
  client: Client;
  target: Target;
  method: DescMethod;
  requests: Uint8Array[];
  metadata: Metadata;
  timeoutMs?: number;
  connectTimeoutMs: number;
  registry: Registry;
  output: OutputOptions;
  events: CallEvents;
  /** Aborting cancels the call: it ends with CANCELLED. */
  signal?: AbortSignal;
}

/** Calls a method of any streaming kind, reporting headers and messages as they arrive; resolves with the final status. */
export async function invoke(options: InvokeOptions): Promise<CallResult> {
  const {method, client, signal} = options;
  const streamingResponse = method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming';
  const streamingRequest = method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming';
  if (!streamingRequest && options.requests.length !== 1) {
    throw usageError(`${method.name} takes exactly one request message; ${options.requests.length} were given.`);
  }
  if (signal?.aborted) return {status: cancelledStatus()};
  await connect(client, options.target, options.connectTimeoutMs);
  if (signal?.aborted) return {status: cancelledStatus()};
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (bytes: Uint8Array) => Buffer.from(bytes);
  const deserialize = (bytes: Buffer) =>
    decodeResponse(method.output, bytes, options.registry, options.output, options.events.unknownFields);
  const callOptions = options.timeoutMs ? {deadline: Date.now() + options.timeoutMs} : {};
  const [request] = options.requests;
  const {metadata} = options;
  return new Promise<CallResult>((resolve) => {
    let call: any;
    const onReply = (error: ServiceError | null, response?: JsonValue) => {
      if (!error && response !== undefined) options.events.message(response);
    };
    if (method.methodKind === 'unary')
      call = client.makeUnaryRequest(path, serialize, deserialize, request, metadata, callOptions, onReply);
    else if (method.methodKind === 'server_streaming')
      call = client.makeServerStreamRequest(path, serialize, deserialize, request, metadata, callOptions);
    else if (method.methodKind === 'client_streaming')
      call = client.makeClientStreamRequest(path, serialize, deserialize, metadata, callOptions, onReply);
    else call = client.makeBidiStreamRequest(path, serialize, deserialize, metadata, callOptions);
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, {once: true});
    call.on('metadata', (metadata: Metadata) => options.events.headers(metadata));
    if (streamingResponse) {
      call.on('data', (message: JsonValue) => options.events.message(message));
      call.on('error', () => undefined);
    }
    call.on('status', (status: StatusObject) => {
      signal?.removeEventListener('abort', cancel);
      resolve({status});
    });
    if (streamingRequest) {
      for (const message of options.requests) call.write(message);
      call.end();
    }
  });
}

/** The status of a call cancelled before it started, as grpc-js reports one cancelled in flight. */
function cancelledStatus(): StatusObject {
  return {code: GrpcStatus.CANCELLED, details: 'Cancelled on client', metadata: new Metadata()};
}

/** The google.rpc.Status details of an error (grpc-status-details-bin), decoded where the types are known. */
export function decodeDetails(status: StatusObject, registry: Registry): JsonValue[] {
  const raw = status.metadata?.get('grpc-status-details-bin')[0];
  const statusDesc = registry.getMessage('google.rpc.Status');
  if (!Buffer.isBuffer(raw) || !statusDesc) return [];
  let details: Any[];
  try {
    details = (fromBinary(statusDesc, raw) as unknown as {details: Any[]}).details;
  } catch {
    return [{'@type': 'grpc-status-details-bin', value: raw.toString('base64'), error: 'not a google.rpc.Status'}];
  }
  return details.map((detail): JsonValue => {
    const message = anyUnpack(detail, registry);
    if (!message) return {'@type': detail.typeUrl, value: Buffer.from(detail.value).toString('base64')};
    const desc = registry.getMessage(message.$typeName)!;
    return {'@type': detail.typeUrl, ...(toJson(desc, message, {registry}) as JsonObject)};
  });
}

/** The status as users read it: code name and number, message, decoded details. */
export function describeStatus(status: StatusObject, registry: Registry) {
  return {
    code: status.code,
    name: grpcCodeName(status.code),
    message: status.details,
    details: decodeDetails(status, registry),
  };
}

export function metadataObject(metadata: Metadata | undefined): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(metadata?.getMap() ?? {})) {
    result[key] = (Array.isArray(values) ? values : [values]).map((value) =>
      Buffer.isBuffer(value) ? value.toString('base64') : String(value),
    );
  }
  return result;
}

/** `-H 'key: value'` as a metadata pair. */
export function parseHeader(header: string): [string, string] {
  const match = /^([^:\s]+)\s*:\s*(.*)$/.exec(header);
  if (!match) throw usageError(`Header "${header}" is not "key: value".`);
  return [match[1].toLowerCase(), match[2]];
}

export function metadataOf(headers: Array<[string, string]>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of headers) {
    if (key.endsWith('-bin')) metadata.add(key, Buffer.from(value, 'base64'));
    else metadata.add(key, value);
  }
  return metadata;
}

/** Integers beyond 2^53 as JSON strings (proto3 JSON takes strings for every number), so none loses precision in JSON.parse. */
function quoteBigIntegers(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      out += char;
      if (char === '\\') out += text[++i] ?? '';
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') {
      inString = true;
      out += char;
      continue;
    }
    const match = /^-?\d+(?![\d.eE])/.exec(text.slice(i, i + 40));
    if (match && /[\s,:[]/.test(text[i - 1] ?? ' ')) {
      const digits = match[0];
      out += Number.isSafeInteger(Number(digits)) ? digits : `"${digits}"`;
      i += digits.length - 1;
      continue;
    }
    out += char;
  }
  return out;
}
