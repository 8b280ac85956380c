import {randomUUID} from 'node:crypto';
import {STATUS_CODES, createServer, type IncomingMessage} from 'node:http';
import {setTimeout as sleep} from 'node:timers/promises';
import fastifyCors from '@fastify/cors';
import Fastify, {LogController, type FastifyError, type FastifyReply, type FastifyRequest} from 'fastify';
import {logFailure, toApiError} from '../api-errors.js';
import {TacosError} from '../../errors.js';
import {accessLogger, type Logger} from '../../logging.js';
import type {ServerMetrics} from '../metrics.js';
import {validRequestId} from '../request-id.js';
import {DEFAULT_HTTP_LIMITS, type HttpLimits} from './limits.js';
import type {RateDecision, RequestLimiter} from './rate-limit.js';
import {
  AJV_OPTIONS,
  bodyValidator,
  directlyServable,
  parseJsonBody,
  serveDirect,
  type DirectContext,
  type JsonRoute,
  type RequestFailure,
} from './direct-route.js';

export interface HttpServerOptions {
  logger: Logger;
  metrics: ServerMetrics;
  bodyLimitBytes: number;
  /** Why the server cannot serve now (for /readyz), or undefined when it can. */
  notReadyReason: () => Promise<string | undefined>;
  /** Origins browsers may call from (`*` for any); no CORS when absent or empty. */
  corsOrigins?: string[];
  /** Headers of another protocol the routes speak (Connect's), allowed and exposed besides the REST ones. */
  corsHeaders?: {allowed: readonly string[]; exposed: readonly string[]};
  /** The per-client limit of `/api/v1` requests (preflights are not counted). */
  rateLimiter?: RequestLimiter;
  /** POST routes with JSON bodies that are also served straight from node:http (direct-route.ts). */
  jsonRoutes?: JsonRoute[];
  /** How long a client may take and how many connections it may hold; DEFAULT_HTTP_LIMITS when absent. */
  limits?: HttpLimits;
}

/**
 * A fastify server as every tacos server speaks HTTP: request ids taken or made and echoed, one
 * JSON log line and metrics per request, the error envelope for every failure (fastify's own
 * included), /healthz, /readyz and /metrics. Its JSON routes are served from node:http directly
 * when fastify would add nothing: fastify's per-request machinery cost a third of a join's CPU.
 */
export function createHttpServer(options: HttpServerOptions) {
  const access = accessLogger(options.logger);
  const limits = options.limits ?? DEFAULT_HTTP_LIMITS;
  const refused = (reason: string) => options.metrics.refusals.inc({door: 'http', reason});
  const cors = options.corsOrigins?.length ? corsPolicy(options.corsOrigins, options.corsHeaders) : undefined;
  const limited = (method: string | undefined, url: string | undefined) =>
    options.rateLimiter !== undefined && method !== 'OPTIONS' && LIMITED_PATH.test(url ?? '');
  let closing = false;
  const requestIdOf = (request: IncomingMessage) => validRequestId(request.headers['x-request-id']) ?? randomUUID();
  const direct = new Map(
    (options.jsonRoutes ?? []).map((route) => [route.url, {route, validate: bodyValidator(route)}]),
  );
  const context: DirectContext = {
    begin(request) {
      const requestId = requestIdOf(request);
      const headers: Record<string, string> = {'x-request-id': requestId};
      for (const [name, value] of cors?.headers(request.headers.origin) ?? []) headers[name] = value;
      return {requestId, headers};
    },
    refusal: () => (closing ? shuttingDown() : undefined),
    limit: (request) => (limited(request.method, request.url) ? options.rateLimiter?.check(request) : undefined),
    failure: (error, requestId) => errorAnswer(options.logger, error, requestId),
    observe(method, route, status, ms, requestId) {
      const labels = {method, route, status_code: String(status)};
      options.metrics.httpRequests.inc(labels);
      options.metrics.httpDuration.observe(labels, ms / 1000);
      access.info({req_id: requestId, method, route, status, ms: Math.round(ms * 10) / 10}, 'http request');
    },
  };

  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({disableRequestLogging: true, requestIdLogLabel: 'req_id'}),
    bodyLimit: options.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: requestIdOf,
    ajv: {customOptions: AJV_OPTIONS},
    forceCloseConnections: 'idle',
    // /api/v1/queue/join/ is /api/v1/queue/join (its CORS preflight already was).
    routerOptions: {ignoreTrailingSlash: true},
    clientErrorHandler: (error, socket) => {
      // The connection is gone: nobody to answer.
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const requestId = randomUUID();
      const refusal = clientError(error.code);
      refused(refusal.reason);
      const {status, body} = context.failure(refusal.error, requestId);
      const text = JSON.stringify(body);
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
        );
      }
      socket.destroy(error);
    },
    // Requests that arrive while closing get our envelope (below), not fastify's own 503.
    return503OnClosing: false,
    // A URL fastify cannot decode (a bad percent-escape): our envelope, never fastify's echo of the
    // URL (and of its ?token=). No hook runs for these requests: the headers and the access line are set here.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      for (const [name, value] of cors?.headers(request.headers.origin) ?? []) reply.header(name, value);
      reply.raw.once('finish', () =>
        context.observe(request.method, 'unmatched', reply.statusCode, reply.elapsedTime, request.id),
      );
      void sendError(request, reply, frameworkError(error));
    },
    serverFactory: (handler) => {
      // Node refuses a header time above the request time; 0 turns either off, as in Node.
      const headersTimeout =
        limits.requestTimeoutMs > 0
          ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs)
          : limits.headersTimeoutMs;
      const server = createServer(
        {
          headersTimeout,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          // Node looks for requests past their time every 30 s by default: a 10 s limit would hold 40.
          connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 2)),
        },
        (request, response) => {
          const hot = request.method === 'POST' ? direct.get(request.url ?? '') : undefined;
          if (hot && directlyServable(request, options.bodyLimitBytes))
            serveDirect(hot.route, hot.validate, context, request, response);
          else handler(request, response);
        },
      );
      server.maxConnections = limits.maxConnections;
      server.on('drop', () => refused('connection_cap'));
      return server;
    },
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) {
      reply.header('connection', 'close');
      return sendError(request, reply, shuttingDown());
    }
    if (limited(request.method, request.url)) {
      const decision = (await options.rateLimiter?.check(request.raw)) as RateDecision;
      reply.headers(decision.headers);
      if (decision.refusal) return sendError(request, reply, decision.refusal);
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    context.observe(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime,
      request.id,
    );
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error));
  // Every route's method and path, so that a known path asked with another method gets 405 and Allow.
  const routes: Array<{method: string; path: RegExp}> = [];
  app.addHook('onRoute', (route) => {
    const pattern = route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+');
    for (const method of [route.method].flat())
      if (method !== 'HEAD' && method !== 'OPTIONS') routes.push({method, path: new RegExp(`^${pattern}$`)});
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = [...new Set(routes.filter((route) => route.path.test(path)).map((route) => route.method))];
    if (allowed.length === 0)
      return sendError(request, reply, new TacosError(`No route ${request.method} ${path}.`, {code: 'NOT_FOUND'}));
    reply.header('allow', allowed.join(', '));
    return sendError(
      request,
      reply,
      new TacosError(`${path} does not take ${request.method}; it takes ${allowed.join(', ')}.`, {
        code: 'METHOD_NOT_ALLOWED',
      }),
    );
  });
  function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
    const {status, body} = context.failure(error, request.id);
    return reply.code(status).send(body);
  }
  if (cors) void app.register(fastifyCors, cors.options);
  // Every body route takes JSON, parsed as the direct path parses it; text/plain (what a browser
  // sends without a preflight) is 415 like any other media type.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  app.addContentTypeParser('application/json', {parseAs: 'buffer'}, (request, body, done) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      return done(
        new TacosError(`Content-Encoding ${encoding} is not accepted: send the JSON body uncompressed.`, {
          code: 'UNSUPPORTED_MEDIA_TYPE',
        }),
        undefined,
      );
    }
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as RequestFailure, undefined);
    }
  });

  for (const {route, validate} of direct.values()) {
    app.post(
      route.url,
      {schema: {body: route.bodySchema}, validatorCompiler: () => validate},
      async (request, reply) => {
        const answer = await route.handle(request.body, request.headers, request.raw);
        return reply
          .code(answer.status)
          .headers(answer.headers ?? {})
          .send(answer.body);
      },
    );
  }
  app.get('/healthz', async () => ({status: 'ok'}));
  app.get('/readyz', async (_request, reply) => {
    const reason = await options.notReadyReason();
    if (reason) return reply.code(503).send({status: 'not_ready', reason});
    return {status: 'ready'};
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(options.metrics.contentType);
    return options.metrics.text();
  });
  return app;
}

/** A failed request's status and error envelope; what the client is not told is logged (logFailure). */
export function errorAnswer(logger: Logger, error: unknown, requestId: string): {status: number; body: object} {
  const api = toApiError(httpError(error));
  logFailure(logger, error, api, requestId);
  return {
    status: api.shape.http,
    body: {
      error: {code: api.code, message: api.message, trace_id: requestId, ...(api.field ? {field: api.field} : {})},
    },
  };
}

export const shuttingDown = () => new TacosError('The server is shutting down; try again.', {code: 'UNAVAILABLE'});

/**
 * A request node could not read as HTTP (a control byte in a header, a body both sized and
 * chunked...) or that did not arrive in time, as our error and the reason it is counted under.
 */
function clientError(code: string | undefined): {error: TacosError; reason: string} {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return {
      reason: 'request_timeout',
      error: new TacosError('The request did not arrive in time.', {code: 'REQUEST_TIMEOUT'}),
    };
  if (code === 'HPE_HEADER_OVERFLOW')
    return {
      reason: 'headers_too_large',
      error: new TacosError('The request headers are larger than allowed.', {code: 'HEADERS_TOO_LARGE'}),
    };
  return {
    reason: 'malformed',
    error: new TacosError(`The request is not valid HTTP/1.1 (${code ?? 'unreadable'}).`, {code: 'INVALID_ARGUMENT'}),
  };
}

/** An error fastify meets before routing (a URL it cannot decode, a path parameter too long), as ours. */
function frameworkError(error: FastifyError): unknown {
  if (error.code === 'FST_ERR_BAD_URL')
    return new TacosError('The URL is not valid: it has a malformed percent-escape.', {code: 'INVALID_ARGUMENT'});
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH')
    return new TacosError('A part of the URL path is longer than allowed.', {code: 'INVALID_ARGUMENT'});
  return error;
}

/** The routes a client's rate limit counts: the API, not health, metrics or version. */
const LIMITED_PATH = /^\/api\/v1(\/|\?|$)/;

const EXPOSED_HEADERS = [
  'X-Request-ID',
  'X-Tacos-Backend-Road',
  'Retry-After',
  'Idempotent-Replayed',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
  'X-RateLimit-Window',
];

/**
 * CORS for browsers: @fastify/cors answers preflights and adds its headers to fastify's answers;
 * `headers` are the same ones for the direct path's answers (the tests compare both paths).
 */
function corsPolicy(origins: string[], extra: HttpServerOptions['corsHeaders']) {
  const any = origins.includes('*');
  const exposedHeaders = [...new Set([...EXPOSED_HEADERS, ...(extra?.exposed ?? [])])];
  const exposed = exposedHeaders.join(', ');
  return {
    options: {
      origin: any ? '*' : origins,
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      // What the web client sends (test/fixtures/contracts/REST.md 3.2), and the Go gateway's list besides.
      allowedHeaders: [
        ...new Set([
          'Content-Type',
          'Accept',
          'Authorization',
          'Idempotency-Key',
          'X-Request-ID',
          'X-Trace-Id',
          'X-Requested-With',
          ...(extra?.allowed ?? []),
        ]),
      ],
      exposedHeaders,
      credentials: !any,
      maxAge: 86_400,
      // A plain OPTIONS (no Origin: curl, a load balancer's probe) gets the methods, not a text/plain 400.
      strictPreflight: false,
    },
    headers(origin: string | undefined): Array<[string, string]> {
      if (any)
        return [
          ['access-control-allow-origin', '*'],
          ['access-control-expose-headers', exposed],
        ];
      const allowed: Array<[string, string]> =
        origin !== undefined && origins.includes(origin) ? [['access-control-allow-origin', origin]] : [];
      return [
        ['vary', 'Origin'],
        ...allowed,
        ['access-control-allow-credentials', 'true'],
        ['access-control-expose-headers', exposed],
      ];
    },
  };
}

export type HttpServer = ReturnType<typeof createHttpServer>;

/**
 * Closes a server: requests in flight may finish for `graceMs`, then the connections left are
 * dropped, so a client that stalls (a body never sent in full) cannot hold the stop.
 */
export async function closeHttpServer(app: HttpServer, graceMs: number): Promise<void> {
  const closed = app.close();
  const inTime = await Promise.race([closed.then(() => true), sleep(graceMs, false, {ref: false})]);
  if (!inTime) app.server.closeAllConnections();
  await closed;
}

/** Aborts when the client goes away before its answer is sent (a closed connection, a timeout). */
export function callerSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => reply.raw.writableFinished || controller.abort());
  return controller.signal;
}

/** Fastify's own errors (validation, body parsing, size), and the direct path's, as our codes. */
function httpError(error: unknown): unknown {
  if (error instanceof TacosError || !(error instanceof Error)) return error;
  const {validation, statusCode} = error as Partial<Pick<FastifyError, 'validation' | 'statusCode'>>;
  if (validation) {
    const issue = validation[0];
    const missing = (issue?.params as {missingProperty?: string} | undefined)?.missingProperty;
    const field = missing ?? issue?.instancePath.replace(/^\//, '').replaceAll('/', '.') ?? '';
    const message = missing ? `${missing} is required` : `${field || 'body'} ${issue?.message ?? 'is not valid'}`;
    return new TacosError(message, {code: 'INVALID_ARGUMENT', field: field || undefined});
  }
  if (statusCode === 413)
    return new TacosError('The request body is larger than allowed.', {code: 'PAYLOAD_TOO_LARGE'});
  if (statusCode === 415) return new TacosError('Send the body as application/json.', {code: 'UNSUPPORTED_MEDIA_TYPE'});
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return new TacosError(`The request is not valid: ${error.message}`, {code: 'INVALID_ARGUMENT'});
  }
  return error;
}
