// The work of one join, and nothing else: the gateway's own JOIN Lua script (from the build, so
// it is the same script) through ioredis's EVALSHA, with the same keys and arguments.
import {Redis} from 'ioredis';
import {JOIN} from '../../dist/services/gateway/queue/scripts.js';
import {queueKeys} from '../../dist/services/gateway/queue/keys.js';
import {newWaitingToken} from '../../dist/services/gateway/queue/tokens.js';

const HEARTBEAT_TTL_MS = 300_000;
const TOKEN_TTL_MS = HEARTBEAT_TTL_MS + 600_000;
const IDEMPOTENCY_TTL_MS = 600_000;
// The gateway's default REDIS_COMMAND_TIMEOUT: the join is stored by then or not at all.
const JOIN_TIMEOUT_MS = 800;

export function connectRedis() {
  const [host, port] = (process.env.REDIS_ADDRESS ?? '127.0.0.1:6379').split(':');
  const redis = new Redis({host, port: Number(port)});
  redis.defineCommand('join', {lua: JOIN});
  return redis;
}

/** → {waitingToken, position} */
export async function join(redis, eventId, userId = '', sessionId = '') {
  const keys = queueKeys(eventId);
  const token = newWaitingToken(eventId);
  // No Idempotency-Key: no request hash, as the gateway.
  const reply = await redis.join(
    4,
    keys.seq,
    keys.waiting,
    keys.heartbeat,
    keys.token(token),
    token,
    userId,
    sessionId,
    TOKEN_TTL_MS,
    '',
    IDEMPOTENCY_TTL_MS,
    HEARTBEAT_TTL_MS,
    Date.now() + JOIN_TIMEOUT_MS,
    TOKEN_TTL_MS,
  );
  return {waitingToken: String(reply[1]), position: Number(reply[2])};
}
