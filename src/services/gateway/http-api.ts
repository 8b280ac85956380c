import {randomUUID} from 'node:crypto';
import Fastify, {type FastifyError, type FastifyReply, type FastifyRequest} from 'fastify';
import {TacosError} from '../errors.js';
import type {Logger} from '../logging.js';
import {toApiError} from '../api-errors.js';
import type {ServerMetrics} from '../metrics.js';
import type {QueueService, QueueState} from './queue/queue-service.js';
import {validRequestId} from '../request-id.js';

export interface HttpApiDeps {
  queue: QueueService;
  metrics: ServerMetrics;
  logger: Logger;
  bodyLimitBytes: number;
  version: string;
  /** Why the gateway cannot serve now, or undefined when it can. */
  notReadyReason: () => Promise<string | undefined>;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

const joinSchema = {
  body: {
    type: 'object',
    required: ['event_id'],
    properties: {
      event_id: {type: 'string'},
      user_id: {type: 'string', maxLength: 128},
      session_id: {type: 'string', maxLength: 128},
    },
  },
} as const;

const tokenQuerySchema = {
  querystring: {type: 'object', required: ['token'], properties: {token: {type: 'string', minLength: 1}}},
} as const;

const enterSchema = {
  body: {type: 'object', required: ['waiting_token'], properties: {waiting_token: {type: 'string', minLength: 1}}},
} as const;

/** The REST door of the gateway: health, metrics and the waiting-room queue under /api/v1. */
export function buildHttpApi(deps: HttpApiDeps) {
  const app = Fastify({
    loggerInstance: deps.logger,
    disableRequestLogging: true,
    bodyLimit: deps.bodyLimitBytes,
    requestIdHeader: false,
    requestIdLogLabel: 'req_id',
    genReqId: (request) => validRequestId(request.headers['x-request-id']) ?? randomUUID(),
    // Wrong types are a client error to report, never something to coerce.
    ajv: {customOptions: {coerceTypes: false, removeAdditional: false, allErrors: false}},
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = {method: request.method, route, status_code: String(reply.statusCode)};
    deps.metrics.httpRequests.inc(labels);
    deps.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    request.log.info(
      {method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10},
      'http request',
    );
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, httpError(error)));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new TacosError(`No route ${request.method} ${request.url.split('?')[0]}.`, {code: 'NOT_FOUND'})),
  );

  app.get('/healthz', async () => ({status: 'ok'}));
  app.get('/readyz', async (_request, reply) => {
    const reason = await deps.notReadyReason();
    if (reason) return reply.code(503).send({status: 'not_ready', reason});
    return {status: 'ready'};
  });
  app.get('/version', async () => ({name: 'tacos-gateway', version: deps.version, node: process.version}));
  app.get('/metrics', async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.post('/api/v1/queue/join', {schema: joinSchema}, async (request, reply) => {
    const body = request.body as {event_id: string; user_id?: string; session_id?: string};
    const result = await deps.queue.join({
      eventId: body.event_id,
      userId: body.user_id ?? '',
      sessionId: body.session_id ?? '',
      idempotencyKey: idempotencyKey(request),
    });
    if (result.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(202).send({waiting_token: result.waitingToken, position_hint: result.position, status: 'waiting'});
  });

  app.get('/api/v1/queue/status', {schema: tokenQuerySchema}, async (request) => {
    const {token} = request.query as {token: string};
    return statusBody(await deps.queue.status(token));
  });

  app.post('/api/v1/queue/enter', {schema: enterSchema}, async (request, reply) => {
    const {waiting_token: token} = request.body as {waiting_token: string};
    const result = await deps.queue.enter(token);
    switch (result.outcome) {
      case 'granted':
        return {admission: 'granted', reservation_token: result.reservationToken, ttl_sec: result.ttlSeconds};
      case 'denied':
        reply.header('retry-after', String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))));
        throw new TacosError(result.message, {code: 'NOT_READY'});
      case 'expired':
        throw new TacosError('This waiting token expired: no status call within the heartbeat time.', {code: 'TOKEN_EXPIRED'});
      case 'left':
        throw new TacosError('This waiting token left the queue.', {code: 'TOKEN_LEFT'});
    }
  });

  app.delete('/api/v1/queue/leave', {schema: tokenQuerySchema}, async (request) => {
    const {token} = request.query as {token: string};
    await deps.queue.leave(token);
    return {status: 'left'};
  });

  app.get('/api/v1/queue/stats', async (request) => {
    const {event_id: eventId} = request.query as {event_id?: string};
    const events = await deps.queue.stats(eventId || undefined);
    return {
      events: events.map((event) => ({
        event_id: event.eventId,
        total_waiting: event.waiting,
        total_admitted: event.admitted,
        admission_rate_per_minute: event.admittedLastMinute,
        average_wait_time_seconds: event.averageWaitSeconds,
      })),
    };
  });

  return app;
}

/** The REST shape of a token's state; after admission it says ready, as clients poll for. */
function statusBody(state: QueueState) {
  if (state.status === 'waiting') {
    return {
      status: state.admissionReady ? 'ready' : 'waiting',
      position: state.position,
      eta_sec: state.etaSeconds,
      waiting_time: state.waitingSeconds,
      ready_for_entry: state.admissionReady,
    };
  }
  const admitted = state.status === 'admitted';
  return {
    status: admitted ? 'ready' : state.status,
    position: 0,
    eta_sec: 0,
    waiting_time: state.waitingSeconds,
    ready_for_entry: admitted,
    admitted,
  };
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !IDEMPOTENCY_KEY.test(value)) {
    throw new TacosError('Idempotency-Key must be 1-255 visible ASCII characters.', {code: 'INVALID_ARGUMENT', field: 'Idempotency-Key'});
  }
  return value;
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
  if (error.statusCode === 413) return new TacosError(`The request body is larger than allowed.`, {code: 'PAYLOAD_TOO_LARGE'});
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
