import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http';
import {Ajv, type ValidateFunction} from 'ajv';
import {parse as parseJson} from 'secure-json-parse';
import type {RateDecision} from './rate-limit.js';

/** What a JSON route answers: the status, headers of its own, and the body (sent as JSON). */
export interface JsonAnswer {
  status: number;
  /** Lowercase names: the direct path passes them to writeHead as they are, next to its own. */
  headers?: Record<string, string>;
  body: unknown;
}

/** A POST route with a JSON body, its schema and its work, whichever path serves it. */
export interface JsonRoute<Body = any> {
  url: string;
  bodySchema: object;
  /** `request` is the caller's: its socket says whether the caller is still there. */
  handle(body: Body, headers: IncomingHttpHeaders, request: IncomingMessage): Promise<JsonAnswer>;
}

// The options our fastify servers give its ajv (see server.ts): wrong types are reported, never coerced.
export const AJV_OPTIONS = {coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: true} as const;
const ajv = new Ajv(AJV_OPTIONS);

/** One compiled validator per schema, shared by fastify's route and the direct path. */
export function bodyValidator(route: JsonRoute): ValidateFunction {
  return ajv.compile(route.bodySchema);
}

/** A request refused before the route's work, in the shape of fastify's own errors, so both paths map it alike. */
export class RequestFailure extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
    readonly validation?: ValidateFunction['errors'],
  ) {
    super(message);
  }
}

const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset=utf-8\s*)?$/i;

/**
 * Whether the direct path can serve this request exactly as fastify would: a JSON body of known,
 * allowed length and nothing unusual. Anything else (chunked, encoded or empty bodies, other media
 * types, a query string) goes to fastify, whose answers for those are the reference.
 */
export function directlyServable(request: IncomingMessage, bodyLimitBytes: number): boolean {
  const {headers} = request;
  const length = Number(headers['content-length']);
  return (
    headers['transfer-encoding'] === undefined &&
    headers['content-encoding'] === undefined &&
    length > 0 &&
    length <= bodyLimitBytes &&
    JSON_CONTENT_TYPE.test(headers['content-type'] ?? '')
  );
}

/** The parts of a server the direct path shares with fastify's. */
export interface DirectContext {
  /** Takes or makes the request id; returns it and the headers every answer carries (the id, CORS). */
  begin(request: IncomingMessage): {requestId: string; headers: Record<string, string>};
  /** Why a new request is refused now (the server is closing), or undefined; it gets its envelope and the connection closes. */
  refusal(): unknown;
  /** The rate limit's decision for this request, when one applies (asked while the body arrives). */
  limit(request: IncomingMessage): Promise<RateDecision> | undefined;
  /** The error envelope of a failure, as status and body; logs what is our fault. */
  failure(error: unknown, requestId: string): {status: number; body: unknown};
  /** The access line and metrics of one finished request. */
  observe(method: string, route: string, status: number, ms: number, requestId: string): void;
}

/**
 * Serves one request of a JSON route straight from node:http: the body read and parsed as fastify
 * parses JSON (secure-json-parse, prototype poisoning refused), the same validator, the route's
 * work, and the same envelope, headers, log line and metrics as the fastify path.
 */
export function serveDirect(
  route: JsonRoute,
  validate: ValidateFunction,
  context: DirectContext,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const started = performance.now();
  const {requestId, headers} = context.begin(request);
  const send = (answer: JsonAnswer) => {
    let text: string;
    try {
      text = JSON.stringify(answer.body);
      // All headers in one writeHead: node validates them once (setHeader before it would be a second pass).
      response.writeHead(
        answer.status,
        Object.assign(headers, answer.headers, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
        }),
      );
    } catch (error) {
      // A header value node refuses, a body JSON cannot write: our bug, logged; the caller's connection closes.
      context.failure(error, requestId);
      response.destroy();
      return;
    }
    response.end(text);
    // Once answered, as fastify's onResponse: a caller gone before the answer is logged with the answer's status.
    context.observe('POST', route.url, answer.status, performance.now() - started, requestId);
  };
  const refused = context.refusal();
  if (refused !== undefined) {
    headers.connection = 'close';
    send(context.failure(refused, requestId));
    return;
  }
  const limit = context.limit(request);
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('error', () => response.destroy());
  request.on('end', () => {
    const work = () => answer(route, validate, Buffer.concat(chunks), request);
    (limit ? limited(limit, headers).then(work) : work()).then(send, (error: unknown) =>
      send(context.failure(error, requestId)),
    );
  });
}

/**
 * The JSON body parser of both paths (fastify's is replaced by it): secure-json-parse with fastify's
 * settings, so `__proto__` and `constructor.prototype` keys are refused, and messages that say which
 * of those it was (fastify's own call a poisoned body "not valid JSON").
 */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0)
    throw new RequestFailure("Body cannot be empty when content-type is set to 'application/json'", 400);
  try {
    return parseJson(raw, {protoAction: 'error', constructorAction: 'error'});
  } catch (error) {
    if (/forbidden prototype property/.test(String(error))) {
      throw new RequestFailure('The body has a __proto__ or constructor.prototype key; such keys are refused.', 400);
    }
    throw new RequestFailure("Body is not valid JSON but content-type is set to 'application/json'", 400);
  }
}

/** Adds the limit's headers to the answer's; a refusal fails the request before the route's work. */
async function limited(limit: Promise<RateDecision>, headers: Record<string, string>): Promise<void> {
  const decision = await limit;
  Object.assign(headers, decision.headers);
  if (decision.refusal) throw decision.refusal;
}

async function answer(
  route: JsonRoute,
  validate: ValidateFunction,
  raw: Buffer,
  request: IncomingMessage,
): Promise<JsonAnswer> {
  const body = parseJsonBody(raw);
  if (!validate(body)) throw new RequestFailure('The body is not valid.', 400, validate.errors);
  return route.handle(body, request.headers, request);
}
