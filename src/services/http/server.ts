import {randomUUID} from 'node:crypto';
import Fastify, {LogController, type FastifyError, type FastifyReply, type FastifyRequest} from 'fastify';
import {toApiError} from '../api-errors.js';
import {TacosError} from '../errors.js';
import {accessLogger, type Logger} from '../logging.js';
import type {ServerMetrics} from '../metrics.js';
import {validRequestId} from '../request-id.js';

export interface HttpServerOptions {
  logger: Logger;
  metrics: ServerMetrics;
  bodyLimitBytes: number;
  /** Why the server cannot serve now (for /readyz), or undefined when it can. */
  notReadyReason: () => Promise<string | undefined>;
}

/**
 * A fastify server as every tacos server speaks HTTP: request ids taken or made and echoed, one
 * JSON log line and metrics per request, the error envelope for every failure (fastify's own
 * included), /healthz, /readyz and /metrics.
 */
export function createHttpServer(options: HttpServerOptions) {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({disableRequestLogging: true, requestIdLogLabel: 'req_id'}),
    bodyLimit: options.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (request) => validRequestId(request.headers['x-request-id']) ?? randomUUID(),
    // Wrong types are a client error to report, never something to coerce.
    ajv: {customOptions: {coerceTypes: false, removeAdditional: false, allErrors: false}},
    forceCloseConnections: 'idle',
    // Requests that arrive while closing get our envelope (below), not fastify's own 503.
    return503OnClosing: false,
  });

  const access = accessLogger(options.logger);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) {
      reply.header('connection', 'close');
      return sendError(request, reply, new TacosError('The server is shutting down; try again.', {code: 'UNAVAILABLE'}));
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = {method: request.method, route, status_code: String(reply.statusCode)};
    options.metrics.httpRequests.inc(labels);
    options.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    access.info({req_id: request.id, method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10}, 'http request');
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, httpError(error)));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new TacosError(`No route ${request.method} ${request.url.split('?')[0]}.`, {code: 'NOT_FOUND'})),
  );

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

export type HttpServer = ReturnType<typeof createHttpServer>;

/** Aborts when the client goes away before its answer is sent (a closed connection, a timeout). */
export function callerSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => reply.raw.writableFinished || controller.abort());
  return controller.signal;
}

/** Fastify's own errors (validation, body parsing, size) as our codes. */
function httpError(error: FastifyError): unknown {
  if (error instanceof TacosError) return error;
  if (error.validation) {
    const issue = error.validation[0];
    const missing = (issue?.params as {missingProperty?: string} | undefined)?.missingProperty;
    const field = missing ?? issue?.instancePath.replace(/^\//, '').replaceAll('/', '.') ?? '';
    const message = missing ? `${missing} is required` : `${field || 'body'} ${issue?.message ?? 'is not valid'}`;
    return new TacosError(message, {code: 'INVALID_ARGUMENT', field: field || undefined});
  }
  if (error.statusCode === 413) return new TacosError('The request body is larger than allowed.', {code: 'PAYLOAD_TOO_LARGE'});
  if (error.statusCode === 415) return new TacosError('Send the body as application/json.', {code: 'UNSUPPORTED_MEDIA_TYPE'});
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new TacosError(`The request is not valid: ${error.message}`, {code: 'INVALID_ARGUMENT'});
  }
  return error;
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const api = toApiError(error);
  if (api.code === 'INTERNAL') request.log.error({err: error}, 'internal error');
  return reply.code(api.shape.http).send({
    error: {code: api.code, message: api.message, trace_id: request.id, ...(api.field ? {field: api.field} : {})},
  });
}
