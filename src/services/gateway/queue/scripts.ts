/**
 * The queue's Redis scripts. Each runs atomically on the one slot of its event (every key it
 * touches is in KEYS and carries the hash tag {eventId}), takes the time from Redis (TIME), and
 * orders joins by a Redis counter, so the order never depends on a gateway's clock.
 */

const NOW = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * A waiting token is over when its heartbeat deadline has passed, or when a sweep already took it
 * out of the waiting set; then its state says so. The heartbeat set holds deadlines (last sign of
 * life + the TTL of the gateway that saw it), so gateways with other TTLs each keep their promise.
 * Returns the token's rank, or nil when it expired.
 */
const RANK_OR_EXPIRE = `
local function rank_or_expire(waiting, heartbeat, token_key, token, retention, channel)
  local rank = redis.call('ZRANK', waiting, token)
  local deadline = tonumber(redis.call('ZSCORE', heartbeat, token) or now)
  if rank and deadline >= now then return rank end
  if rank then
    redis.call('ZREM', waiting, token)
    redis.call('ZREM', heartbeat, token)
    redis.call('PUBLISH', channel, 'expired')
  end
  redis.call('HSET', token_key, 'state', 'expired')
  redis.call('PEXPIRE', token_key, retention)
  return nil
end
`;

/** Tokens the admission bucket holds now, without taking one. */
const BUCKET = `
local function bucket_level(bucket, capacity, refill_per_sec)
  local level = tonumber(redis.call('HGET', bucket, 'level') or capacity)
  local at = tonumber(redis.call('HGET', bucket, 'at') or now)
  return math.min(capacity, level + math.max(0, now - at) * refill_per_sec / 1000)
end
`;

/**
 * KEYS: seq, waiting, heartbeat, token [, idempotency]
 * ARGV: token, user, session, token ttl ms, request hash, idempotency ttl ms, heartbeat ttl ms
 * → {'joined', token, position, joinedMs} | {'replay', stored}
 */
export const JOIN = `${NOW}
if #KEYS >= 5 then
  local stored = redis.call('GET', KEYS[5])
  if stored then return {'replay', stored} end
end
local seq = redis.call('INCR', KEYS[1])
-- An idle event's counter may have been set to expire (PRUNE); a waiting line keeps it.
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])
redis.call('HSET', KEYS[4], 'state', 'waiting', 'user', ARGV[2], 'session', ARGV[3], 'joined', now)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
local position = redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
if #KEYS >= 5 then
  redis.call('SET', KEYS[5], ARGV[5] .. '|' .. ARGV[1] .. '|' .. position .. '|' .. now, 'PX', ARGV[6])
end
return {'joined', ARGV[1], position, now}
`;

/**
 * A status call is a sign of life: it moves the token's heartbeat deadline.
 * KEYS: waiting, heartbeat, token, bucket
 * ARGV: token, heartbeat ttl ms, retention ms, channel, capacity, refill/s
 * → {state, position, joinedMs, nowMs, bucketLevelx1000}
 */
export const STATUS = `${NOW}${RANK_OR_EXPIRE}${BUCKET}
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'unknown'} end
local joined = tonumber(redis.call('HGET', KEYS[3], 'joined'))
if state ~= 'waiting' then return {state, 0, joined, now, 0} end
local rank = rank_or_expire(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], ARGV[4])
if not rank then return {'expired', 0, joined, now, 0} end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ttl + tonumber(ARGV[3]))
local level = bucket_level(KEYS[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return {'waiting', rank + 1, joined, now, math.floor(level * 1000)}
`;

/**
 * Entry: refused above the max position; below it, every entry takes a token from the event's
 * bucket (so admission is metered), and positions above the instant ones also wait a minimum time.
 * KEYS: waiting, heartbeat, token, bucket, admits, stats, reservation token
 * ARGV: token, retention ms, channel, instant positions, max position,
 *       min wait ms, capacity, refill/s, reservation token ttl ms, reservation token value
 * → {'granted', position, nowMs} | {'denied', position, reason, retryAfterMs} | {state}
 */
export const ENTER = `${NOW}${RANK_OR_EXPIRE}${BUCKET}
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'unknown'} end
if state ~= 'waiting' then return {state} end
local rank = rank_or_expire(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if not rank then return {'expired'} end
local position = rank + 1
if position > tonumber(ARGV[5]) then return {'denied', position, 'position', 0} end
local joined = tonumber(redis.call('HGET', KEYS[3], 'joined'))
local waited = math.max(0, now - joined)
if position > tonumber(ARGV[4]) and waited < tonumber(ARGV[6]) then
  return {'denied', position, 'wait', tonumber(ARGV[6]) - waited}
end
local refill = tonumber(ARGV[8])
local level = bucket_level(KEYS[4], tonumber(ARGV[7]), refill)
if level < 1 then
  redis.call('HSET', KEYS[4], 'level', tostring(level), 'at', now)
  return {'denied', position, 'rate', math.ceil((1 - level) * 1000 / refill)}
end
redis.call('HSET', KEYS[4], 'level', tostring(level - 1), 'at', now)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'admitted', 'admitted', now)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('SET', KEYS[7], ARGV[10], 'PX', ARGV[9])
redis.call('HINCRBY', KEYS[6], 'admitted', 1)
redis.call('HINCRBY', KEYS[6], 'wait_ms', waited)
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 60000)
redis.call('PEXPIRE', KEYS[5], 60000)
redis.call('PUBLISH', ARGV[3], 'admitted')
return {'granted', position, now}
`;

/**
 * Only a waiting token becomes 'left'; one that already ended (admitted, expired, left) keeps its
 * state, so leaving after entry does not turn an admission into a departure.
 * KEYS: waiting, heartbeat, token
 * ARGV: token, retention ms, channel
 * → {'left', previous state, nowMs} | {'unknown'}
 */
export const LEAVE = `${NOW}
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
`;

/**
 * Takes every waiting token of one event whose heartbeat deadline has passed out of the line (the
 * token's own state follows when it is next asked about).
 * KEYS: waiting, heartbeat
 * ARGV: channel, limit
 * → {number expired, number still waiting}
 */
export const SWEEP = `${NOW}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
if #stale > 0 then
  redis.call('ZREM', KEYS[1], unpack(stale))
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('PUBLISH', ARGV[1], 'expired')
end
return {#stale, redis.call('ZCARD', KEYS[1])}
`;

/**
 * Lets an idle event's keys expire when nobody waits; a join makes the counter persist again.
 * KEYS: waiting, seq, bucket, stats, admits
 * ARGV: retention ms
 * → {1} when set to expire, {0} when someone waits
 */
export const PRUNE = `
if redis.call('ZCARD', KEYS[1]) > 0 then return {0} end
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return {1}
`;

/**
 * KEYS: waiting, stats, admits
 * → {waiting, admitted total, wait ms total, admitted in the last minute}
 */
export const STATS = `${NOW}
local admitted = tonumber(redis.call('HGET', KEYS[2], 'admitted') or 0)
local wait_ms = tonumber(redis.call('HGET', KEYS[2], 'wait_ms') or 0)
return {redis.call('ZCARD', KEYS[1]), admitted, wait_ms, redis.call('ZCOUNT', KEYS[3], now - 60000, '+inf')}
`;

/**
 * Takes a single-use key: its value and the milliseconds it had left, then deletes it.
 * KEYS: the key → {value, pttl} | {'', 0}
 */
export const TAKE = `
local value = redis.call('GET', KEYS[1])
if not value then return {'', 0} end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {value, ttl}
`;

/**
 * Removes an event from the registry only if nobody refreshed it since it was read.
 * KEYS: registry; ARGV: event id, score read → 1 removed, 0 kept
 */
export const UNREGISTER = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;
