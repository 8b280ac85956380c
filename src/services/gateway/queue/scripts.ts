/**
 * The queue's Redis scripts. Each runs atomically on the one slot of its event (every key carries
 * the hash tag {eventId}), takes the time from Redis (TIME), and orders joins by a Redis counter,
 * so the order never depends on a gateway's clock.
 */

const NOW = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Expire a waiting token whose heartbeat deadline has passed; true when it did. The heartbeat set
 * holds deadlines (last sign of life + the TTL of the gateway that saw it), so gateways with other
 * TTLs on one Redis each keep their own promise.
 */
const EXPIRE_IF_STALE = `
local function expire_if_stale(waiting, heartbeat, token_key, token, retention, channel)
  local deadline = tonumber(redis.call('ZSCORE', heartbeat, token) or now)
  if deadline >= now then return false end
  redis.call('ZREM', waiting, token)
  redis.call('ZREM', heartbeat, token)
  redis.call('HSET', token_key, 'state', 'expired')
  redis.call('PEXPIRE', token_key, retention)
  redis.call('PUBLISH', channel, 'expired')
  return true
end
`;

/** Tokens the admission bucket holds now (x1000, an integer), without taking one. */
const BUCKET = `
local function bucket_level(bucket, capacity, refill_per_sec)
  local level = tonumber(redis.call('HGET', bucket, 'level') or capacity)
  local at = tonumber(redis.call('HGET', bucket, 'at') or now)
  return math.min(capacity, level + (now - at) * refill_per_sec / 1000)
end
`;

export interface ScriptDefinition {
  numberOfKeys?: number;
  lua: string;
}

/**
 * KEYS: seq, waiting, heartbeat, token [, idempotency]
 * ARGV: token, user, session, token ttl ms, request hash, idempotency ttl ms, heartbeat ttl ms
 * → {'joined', token, position, joinedMs} | {'replay', stored}
 */
export const JOIN: ScriptDefinition = {
  lua: `${NOW}
if #KEYS >= 5 then
  local stored = redis.call('GET', KEYS[5])
  if stored then return {'replay', stored} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])
redis.call('HSET', KEYS[4], 'state', 'waiting', 'user', ARGV[2], 'session', ARGV[3], 'joined', now)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
local position = redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
if #KEYS >= 5 then
  redis.call('SET', KEYS[5], ARGV[5] .. '|' .. ARGV[1] .. '|' .. position .. '|' .. now, 'PX', ARGV[6])
end
return {'joined', ARGV[1], position, now}
`,
};

/**
 * KEYS: waiting, heartbeat, token, bucket
 * ARGV: token, heartbeat ttl ms, retention ms, channel, refresh heartbeat ('1'/'0'), capacity, refill/s
 * → {state, position, joinedMs, nowMs, bucketLevelx1000}
 */
export const STATUS: ScriptDefinition = {
  lua: `${NOW}${EXPIRE_IF_STALE}${BUCKET}
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'unknown'} end
local joined = tonumber(redis.call('HGET', KEYS[3], 'joined'))
if state ~= 'waiting' then return {state, 0, joined, now, 0} end
local ttl = tonumber(ARGV[2])
if expire_if_stale(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], ARGV[4]) then
  return {'expired', 0, joined, now, 0}
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ttl + tonumber(ARGV[3]))
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return {'unknown'} end
local level = bucket_level(KEYS[4], tonumber(ARGV[6]), tonumber(ARGV[7]))
return {'waiting', rank + 1, joined, now, math.floor(level * 1000)}
`,
};

/**
 * KEYS: waiting, heartbeat, token, bucket, admits, stats, reservation token
 * ARGV: token, retention ms, channel, instant positions, max position,
 *       min wait ms, capacity, refill/s, reservation token ttl ms, reservation token value
 * → {'granted', position, nowMs} | {'denied', position, reason, retryAfterMs} | {state}
 */
export const ENTER: ScriptDefinition = {
  lua: `${NOW}${EXPIRE_IF_STALE}${BUCKET}
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'unknown'} end
if state ~= 'waiting' then return {state} end
if expire_if_stale(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then
  return {'expired'}
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return {'unknown'} end
local position = rank + 1
if position > tonumber(ARGV[5]) then return {'denied', position, 'position', 0} end
local joined = tonumber(redis.call('HGET', KEYS[3], 'joined'))
if position > tonumber(ARGV[4]) then
  local waited = now - joined
  if waited < tonumber(ARGV[6]) then return {'denied', position, 'wait', tonumber(ARGV[6]) - waited} end
  local refill = tonumber(ARGV[8])
  local level = bucket_level(KEYS[4], tonumber(ARGV[7]), refill)
  if level < 1 then
    redis.call('HSET', KEYS[4], 'level', tostring(level), 'at', now)
    return {'denied', position, 'rate', math.ceil((1 - level) * 1000 / refill)}
  end
  redis.call('HSET', KEYS[4], 'level', tostring(level - 1), 'at', now)
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'admitted', 'admitted', now)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('SET', KEYS[7], ARGV[10], 'PX', ARGV[9])
redis.call('HINCRBY', KEYS[6], 'admitted', 1)
redis.call('HINCRBY', KEYS[6], 'wait_ms', now - joined)
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 60000)
redis.call('PUBLISH', ARGV[3], 'admitted')
return {'granted', position, now}
`,
};

/**
 * Only a waiting token becomes 'left'; one that already ended (admitted, expired, left) keeps its
 * state, so leaving after entry does not turn an admission into a departure.
 * KEYS: waiting, heartbeat, token
 * ARGV: token, retention ms, channel
 * → {'left', previous state, nowMs} | {'unknown'}
 */
export const LEAVE: ScriptDefinition = {
  lua: `${NOW}
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'unknown'} end
if state == 'waiting' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], 'state', 'left')
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  redis.call('PUBLISH', ARGV[3], 'left')
end
return {'left', state, now}
`,
};

/**
 * Expires every waiting token of one event whose heartbeat deadline has passed.
 * KEYS: waiting, heartbeat
 * ARGV: retention ms, channel, token key prefix, limit
 * → number expired
 */
export const SWEEP: ScriptDefinition = {
  lua: `${NOW}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, token in ipairs(stale) do
  redis.call('ZREM', KEYS[1], token)
  redis.call('ZREM', KEYS[2], token)
  local token_key = ARGV[3] .. token
  redis.call('HSET', token_key, 'state', 'expired')
  redis.call('PEXPIRE', token_key, ARGV[1])
end
if #stale > 0 then redis.call('PUBLISH', ARGV[2], 'expired') end
return #stale
`,
};

/**
 * KEYS: waiting, stats, admits
 * → {waiting, admitted total, wait ms total, admitted in the last minute}
 */
export const STATS: ScriptDefinition = {
  lua: `${NOW}
local admitted = tonumber(redis.call('HGET', KEYS[2], 'admitted') or 0)
local wait_ms = tonumber(redis.call('HGET', KEYS[2], 'wait_ms') or 0)
return {redis.call('ZCARD', KEYS[1]), admitted, wait_ms, redis.call('ZCOUNT', KEYS[3], now - 60000, '+inf')}
`,
};
