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
 * Work that arrives after its deadline (the caller has given up, or been told it failed) does
 * nothing: a join answered "failed" must not hold a place. An Idempotency-Key's stored answer is
 * still returned, since returning it writes nothing. The event's line keys (seq, waiting, heartbeat)
 * live as long as its last sign of life plus the retention, so an abandoned event's keys go away.
 * KEYS: seq, waiting, heartbeat, token [, idempotency]
 * ARGV: token, user, session, token ttl ms, request hash, idempotency ttl ms, heartbeat ttl ms,
 *       deadline (Unix ms), line ttl ms
 * → {'joined', token, position, joinedMs} | {'replay', stored} | {'late', nowMs}
 */
export const JOIN = `${NOW}
if #KEYS >= 5 then
  local stored = redis.call('GET', KEYS[5])
  if stored then return {'replay', stored} end
end
if now > tonumber(ARGV[8]) then return {'late', now} end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[9]) end
redis.call('HSET', KEYS[4], 'state', 'waiting', 'user', ARGV[2], 'session', ARGV[3], 'joined', now)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
local position = redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
if #KEYS >= 5 then
  redis.call('SET', KEYS[5], ARGV[5] .. '|' .. ARGV[1] .. '|' .. position .. '|' .. now, 'PX', ARGV[6])
end
return {'joined', ARGV[1], position, now}
`;

/**
 * A status call is a sign of life: it moves the token's heartbeat deadline, and keeps the event's
 * line keys as long as the token's own.
 * KEYS: waiting, heartbeat, token, bucket, seq
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
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[5]}) do redis.call('PEXPIRE', key, ttl + tonumber(ARGV[3])) end
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
  redis.call('PEXPIRE', KEYS[4], math.ceil((tonumber(ARGV[7]) - level) * 1000 / refill) + 1)
  return {'denied', position, 'rate', math.ceil((1 - level) * 1000 / refill)}
end
redis.call('HSET', KEYS[4], 'level', tostring(level - 1), 'at', now)
-- A bucket left alone refills to full: once it would be, no key says the same.
redis.call('PEXPIRE', KEYS[4], math.ceil((tonumber(ARGV[7]) - level + 1) * 1000 / refill) + 1)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'admitted', 'admitted', now)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('SET', KEYS[7], ARGV[10], 'PX', ARGV[9])
redis.call('HINCRBY', KEYS[6], 'admitted', 1)
redis.call('HINCRBY', KEYS[6], 'wait_ms', waited)
redis.call('PEXPIRE', KEYS[6], ARGV[2])
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
 * Undoes a join whose answer did not come in time, so that the caller, told it failed, holds no
 * place. Sent on the join's own connection, Redis runs it after the join, whether the join ran or not.
 * KEYS: waiting, heartbeat, token [, idempotency]
 * ARGV: token, channel
 * → {1} when the join had been stored, {0} when not
 */
export const WITHDRAW = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if #KEYS >= 4 then
  local stored = redis.call('GET', KEYS[4])
  if stored and string.find(stored, '|' .. ARGV[1] .. '|', 1, true) then redis.call('DEL', KEYS[4]) end
end
if removed == 1 then redis.call('PUBLISH', ARGV[2], 'left') end
return {removed}
`;

/**
 * Takes every waiting token of one event whose heartbeat deadline has passed out of the line (the
 * token's own state follows when it is next asked about), and says when the next one is due.
 * KEYS: waiting, heartbeat
 * ARGV: channel, limit
 * → {number expired, number still waiting, next heartbeat deadline (ms) or -1}
 */
export const SWEEP = `${NOW}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
if #stale > 0 then
  redis.call('ZREM', KEYS[1], unpack(stale))
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('PUBLISH', ARGV[1], 'expired')
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#stale, redis.call('ZCARD', KEYS[1]), first[2] and tonumber(first[2]) or -1}
`;

/**
 * Puts an event in the registry of events with waiting tokens (or, with 'XX', only moves one that
 * is there), due for a sweep at `score`; the registry lives while it is written to.
 * KEYS: registry; ARGV: event id, score (ms), registry ttl ms, '' | 'XX' → 1
 */
export const REGISTER = `
if ARGV[4] == 'XX' then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
else redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * Opens an event at run time (an unknown id in development, or an admin's call) until `now + ttl`,
 * or longer if it already is; a new one only while fewer than `cap` are open (the ones whose time
 * is up are closed first). The set expires with its last opening.
 * KEYS: open events; ARGV: event id, ttl ms, cap
 * → {1, open until ms} | {0, open now}
 */
export const OPEN = `${NOW}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local open = redis.call('ZCARD', KEYS[1])
  if open >= tonumber(ARGV[3]) then return {0, open} end
end
redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return {1, tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))}
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

/**
 * The states of many waiting tokens of one event in one call, for the process's watchers of that
 * event (queue-feed.ts): what STATUS says of each, with the bucket level once. Watching is a sign of
 * life, but a cheap one: a token's heartbeat deadline is moved only once it is within two thirds of
 * the TTL, so a read every third of the TTL keeps every watched token alive and most reads write
 * nothing. Token keys are ARGV[1] .. token: they carry the event's hash tag, so they live on the
 * slot of KEYS.
 * KEYS: waiting, heartbeat, bucket, seq
 * ARGV: token key prefix, heartbeat ttl ms, retention ms, channel, capacity, refill/s, token...
 * → {nowMs, bucketLevelx1000, then per token: state, position, joinedMs, heartbeat deadline ms}
 *   (state 'unknown' for a token never issued or forgotten)
 */
export const FEED = `${NOW}${RANK_OR_EXPIRE}${BUCKET}
local ttl = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local refresh_before = now + ttl * 2 / 3
local reply = {now, math.floor(bucket_level(KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[6])) * 1000)}
local refreshed = false
for i = 7, #ARGV do
  local token = ARGV[i]
  local token_key = ARGV[1] .. token
  local fields = redis.call('HMGET', token_key, 'state', 'joined')
  local state, joined = fields[1], tonumber(fields[2]) or 0
  local position, deadline = 0, 0
  if not state then
    state = 'unknown'
  elseif state == 'waiting' then
    local rank = rank_or_expire(KEYS[1], KEYS[2], token_key, token, ARGV[3], ARGV[4])
    if rank then
      position = rank + 1
      deadline = tonumber(redis.call('ZSCORE', KEYS[2], token) or 0)
      if deadline < refresh_before then
        deadline = now + ttl
        redis.call('ZADD', KEYS[2], 'XX', deadline, token)
        redis.call('PEXPIRE', token_key, ttl + retention)
        refreshed = true
      end
    else
      state = 'expired'
    end
  end
  reply[#reply + 1] = state
  reply[#reply + 1] = position
  reply[#reply + 1] = joined
  reply[#reply + 1] = deadline
end
if refreshed then
  for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4]}) do redis.call('PEXPIRE', key, ttl + retention) end
end
return reply
`;
