import {TacosError} from '../../errors.js';
import type {Authenticator} from '../auth.js';
import {CLOSE, type LiveChannel} from './channel.js';
import type {LiveRequest, LiveRoute} from './live-server.js';
import type {ProtoJson} from './proto-json.js';
import type {UserUpdates} from './user-updates.js';

/** How long a WebSocket opened without ?access_token= has to send {"access_token": "..."}. */
const FIRST_MESSAGE_MS = 10_000;

type Follow = (userId: string, ids: string[], signal: AbortSignal, sessionId: string) => AsyncIterable<object>;

/**
 * A user's reservation and payment updates (user-updates.ts) as live routes:
 * `/api/v1/reservations/ws|events?reservation_ids=a,b` and `/api/v1/payments/ws|events?payment_intent_ids=`.
 * The bearer token comes as `?access_token=` (browsers cannot set headers on a WebSocket or an
 * EventSource) or, on a WebSocket only, as its first message `{"access_token": "..."}` (kept out of
 * URLs and their logs). Messages are the proto3 JSON of the gRPC streams' messages.
 */
export function userRoutes(updates: UserUpdates, authenticator: Authenticator, protoJson: ProtoJson): LiveRoute[] {
  const route = (path: string, idsParam: string, typeName: string, follow: Follow): LiveRoute => ({
    wsPath: `${path}/ws`,
    ssePath: `${path}/events`,
    capReason: 'streams_per_user',
    async open(request, channel) {
      const stopped = new AbortController();
      channel.source = {stop: () => stopped.abort()};
      const ids = (request.query.get(idsParam) ?? '').split(',').filter(Boolean);
      const sessionId = request.query.get('session_id') ?? '';
      const start = (token: string) =>
        authenticator
          .authenticate(`Bearer ${token}`)
          .then((principal) =>
            forward(follow(principal.userId, ids, stopped.signal, sessionId), channel, (message) =>
              protoJson.stringify(typeName, message),
            ),
          );
      const token = request.query.get('access_token');
      if (token) return start(token);
      if (!request.firstMessage) {
        throw new TacosError('Send the bearer token as ?access_token=...', {code: 'UNAUTHENTICATED'});
      }
      // After the upgrade: the first message names the token.
      void tokenOf(request, FIRST_MESSAGE_MS)
        .then(start)
        .catch((error: unknown) => refuseInStream(channel, error));
    },
  });
  return [
    route('/api/v1/reservations', 'reservation_ids', 'gateway.v1.StreamReservationUpdatesResponse', (...args) =>
      updates.reservationUpdates(...args),
    ),
    route('/api/v1/payments', 'payment_intent_ids', 'gateway.v1.StreamPaymentUpdatesResponse', (...args) =>
      updates.paymentUpdates(...args),
    ),
  ];
}

async function tokenOf(request: LiveRequest, timeoutMs: number): Promise<string> {
  const text = await request.firstMessage!(timeoutMs);
  let token: unknown;
  try {
    token = (JSON.parse(text) as {access_token?: unknown}).access_token;
  } catch {
    // Not JSON: no token, said below.
  }
  if (typeof token !== 'string' || token === '') {
    throw new TacosError('The first message must be {"access_token": "<bearer token>"}.', {code: 'UNAUTHENTICATED'});
  }
  return token;
}

/**
 * Sends each message of the stream as the channel takes it: the next one is pulled only once the
 * last is written, so a slow reader holds back the stream, whose own backlog is bounded
 * (user-updates.ts keeps the latest change per reservation or payment).
 */
function forward(messages: AsyncIterable<object>, channel: LiveChannel, toJson: (message: object) => string): void {
  void (async () => {
    let count = 0;
    // Ids unique to this stream: an EventSource resuming with an old one is sent everything again.
    const prefix = Date.now().toString(36);
    try {
      for await (const message of messages) {
        channel.offer(toJson(message), `${prefix}.${++count}`);
        await channel.writable();
        if (channel.closed) return;
      }
      channel.finish();
    } catch (error) {
      refuseInStream(channel, error);
    }
  })();
}

/** A refusal after the upgrade: the error envelope as a message, then the close (1008 for the caller's fault). */
function refuseInStream(channel: LiveChannel, error: unknown): void {
  if (channel.closed) return;
  const known = error instanceof TacosError;
  const body = {error: {code: known ? error.code : 'INTERNAL', message: known ? error.message : 'Internal error'}};
  channel.offer(JSON.stringify(body), 'error');
  const policy = known && ['UNAUTHENTICATED', 'FORBIDDEN', 'INVALID_ARGUMENT', 'RATE_LIMITED'].includes(error.code);
  channel.finish(policy ? CLOSE.policy : CLOSE.internal, known ? error.code : 'INTERNAL');
}
