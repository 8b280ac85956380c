import type {IncomingHttpHeaders} from 'node:http';
import {invalidArgument} from '../server-kit/api-errors.js';
import {TacosError} from '../errors.js';
import type {JsonRoute} from '../server-kit/http/direct-route.js';
import {createHttpServer, type HttpServerOptions} from '../server-kit/http/server.js';
import type {Authenticator} from './auth.js';
import {
  MAX_OPEN_FOR_MS,
  eventStatsMessage,
  isAdmissionReady,
  type QueueService,
  type QueueState,
} from './queue/queue-service.js';

export interface HttpApiDeps extends HttpServerOptions {
  queue: QueueService;
  authenticator: Authenticator;
  version: string;
}

interface JoinBody {
  event_id: string;
  user_id?: string;
  session_id?: string;
}

/** The sale's opening is a burst of joins: this route is served directly (direct-route.ts). */
function joinRoute(queue: QueueService): JsonRoute<JoinBody> {
  return {
    url: '/api/v1/queue/join',
    bodySchema: {
      type: 'object',
      required: ['event_id'],
      properties: {
        event_id: {type: 'string'},
        user_id: {type: 'string', maxLength: 128},
        session_id: {type: 'string', maxLength: 128},
      },
    },
    async handle(body, headers, request) {
      const result = await queue.join({
        eventId: body.event_id,
        userId: body.user_id ?? '',
        sessionId: body.session_id ?? '',
        idempotencyKey: idempotencyKey(headers),
        cancelled: () => request.socket.destroyed,
      });
      return {
        status: 202,
        headers: result.replayed ? {'idempotent-replayed': 'true'} : undefined,
        body: {waiting_token: result.waitingToken, position_hint: result.position, status: 'waiting'},
      };
    },
  };
}

const tokenQuerySchema = {
  querystring: {type: 'object', required: ['token'], properties: {token: {type: 'string', minLength: 1}}},
} as const;

const statsQuerySchema = {
  querystring: {
    type: 'object',
    // Query values are text (ajv does not coerce them here).
    properties: {
      event_id: {type: 'string'},
      cursor: {type: 'string'},
      limit: {type: 'string', pattern: '^[0-9]{1,4}$'},
    },
  },
} as const;

/** The scope of the tokens that may open events. */
const ADMIN_SCOPE = 'queue:admin';

const openEventSchema = {
  body: {
    type: 'object',
    required: ['event_id'],
    properties: {
      event_id: {type: 'string'},
      open_for_sec: {type: 'integer', minimum: 1, maximum: MAX_OPEN_FOR_MS / 1000, default: 86_400},
    },
  },
} as const;

const enterSchema = {
  body: {type: 'object', required: ['waiting_token'], properties: {waiting_token: {type: 'string', minLength: 1}}},
} as const;

/** The REST door of the gateway: health, metrics and the waiting-room queue under /api/v1. */
export function buildHttpApi(deps: HttpApiDeps) {
  const app = createHttpServer({...deps, jsonRoutes: [joinRoute(deps.queue)]});
  app.get('/version', async () => ({name: 'tacos-gateway', version: deps.version, node: process.version}));

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
        throw new TacosError('This waiting token expired: no status call within the heartbeat time.', {
          code: 'TOKEN_EXPIRED',
        });
      case 'left':
        throw new TacosError('This waiting token left the queue.', {code: 'TOKEN_LEFT'});
    }
  });

  app.delete('/api/v1/queue/leave', {schema: tokenQuerySchema}, async (request) => {
    const {token} = request.query as {token: string};
    await deps.queue.leave(token);
    return {status: 'left'};
  });

  // The tab-close beacon (navigator.sendBeacon): a POST with a text/plain body and no custom headers.
  // Its own plugin scope parses text/plain, so every other route still refuses it (415).
  app.register(async (beacon) => {
    beacon.addContentTypeParser('text/plain', {parseAs: 'string', bodyLimit: 1024}, (_request, text, done) =>
      done(null, text),
    );
    beacon.post('/api/v1/queue/leave', async (request) => {
      const {token} = request.query as {token?: string};
      await deps.queue.leave(token || beaconToken(request.body));
      return {status: 'left'};
    });
  });

  // One event, or a page of the events with waiting tokens: never every event in one call.
  app.get('/api/v1/queue/stats', {schema: statsQuerySchema}, async (request) => {
    const {event_id: eventId, cursor, limit} = request.query as {event_id?: string; cursor?: string; limit?: string};
    if (eventId) return {events: [eventStatsMessage(await deps.queue.stats(eventId))]};
    const page = await deps.queue.statsPage(cursor || undefined, limit === undefined ? undefined : Number(limit));
    return {events: page.events.map(eventStatsMessage), ...(page.nextCursor ? {next_cursor: page.nextCursor} : {})};
  });

  // Opens an event for joins (production refuses unknown ones): a token with the queue:admin scope.
  app.post('/api/v1/queue/events', {schema: openEventSchema}, async (request) => {
    const principal = await deps.authenticator.authenticate(request.headers.authorization);
    if (!principal.scopes.includes(ADMIN_SCOPE) && !principal.scopes.includes('*')) {
      throw new TacosError(`Opening an event needs a token with the ${ADMIN_SCOPE} scope.`, {code: 'FORBIDDEN'});
    }
    const {event_id: eventId, open_for_sec: openForSec} = request.body as {event_id: string; open_for_sec: number};
    const openUntil = await deps.queue.openEvent(eventId, openForSec * 1000);
    return {event_id: eventId, open_until: new Date(openUntil).toISOString()};
  });

  return app;
}

/**
 * The REST shape of a token's state. A token that may enter stays "waiting" with ready_for_entry
 * true: the web client enters by itself only on that pair. After entry it says "admitted" (the Go
 * gateway answers 404 TOKEN_EXPIRED there, which is not what happened).
 */
function statusBody(state: QueueState) {
  const waiting = state.status === 'waiting';
  return {
    status: state.status,
    position: waiting ? state.position : 0,
    eta_sec: waiting ? state.etaSeconds : 0,
    waiting_time: state.waitingSeconds,
    ready_for_entry: waiting && isAdmissionReady(state),
    admitted: state.status === 'admitted',
  };
}

/** The waiting token of a beacon's body, {"waiting_token":"..."} sent as text. */
function beaconToken(body: unknown): string {
  let token: unknown;
  try {
    token = (typeof body === 'string' ? JSON.parse(body) : body)?.waiting_token;
  } catch {
    // Not JSON: no token, said below.
  }
  if (typeof token !== 'string' || token === '') {
    throw invalidArgument('token', 'Name the waiting token: ?token=... or a body {"waiting_token":"..."}.');
  }
  return token;
}

/** The Idempotency-Key header (the queue service checks its form); sent twice, it is no key. */
function idempotencyKey(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['idempotency-key'];
  if (Array.isArray(value))
    throw new TacosError('Send one Idempotency-Key header, not several.', {
      code: 'INVALID_ARGUMENT',
      field: 'Idempotency-Key',
    });
  return value;
}
