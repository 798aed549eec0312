-- Apply one report atomically: the only place a facility's live state is written (documents
-- of several facilities go through apply_batch.lua, which writes the same fields).
-- KEYS[1] facility state hash, KEYS[2] region event stream, KEYS[3] region ready mark,
-- KEYS[4] region staleness timers, KEYS[5] region facility set, KEYS[6] the sender's request bucket
-- ARGV[1] bucket tokens per second (0: not charged here), ARGV[2] bucket burst,
-- ARGV[3] measured_at (epoch ms), ARGV[4] report digest, ARGV[5] stream max length,
-- ARGV[6] facility id, ARGV[7] event JSON,
-- ARGV[8] the SEH the report expects to replace ('' = any, '-' = none stored yet, else
--         "status|measured_at": a system report such as a stop's expiry or a closure by opening
--         hours applies only while that is still stored),
-- ARGV[9] the stop mark: '' leave it, '-' clear it, else when the stop began (kept if set),
-- ARGV[10] when these figures go stale (epoch ms), ARGV[11] '1' a system report (keeps the
--          stale mark, which only the facility's own report clears), ARGV[12..] field/value pairs
-- Answers {'limited', ms to wait}, {'not_ready'}, {'superseded'|'older'|'conflict', stored ts,
-- stored event id}, or {'applied'|'duplicate', ts, event id, state fields...}: the facility hash
-- after this report, which the SQL record keeps with the event.
local wait = take_tokens(KEYS[6], ARGV[1], ARGV[2], 1, 1)
if wait > 0 then
  return {'limited', tostring(wait)}
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {'not_ready', '0', ''}
end
local stored = redis.call('HMGET', KEYS[1], 'ts', 'digest', 'event_id', 'seh')
if ARGV[8] ~= '' then
  local current = '-'
  if stored[4] then
    local seh = cjson.decode(stored[4])
    current = seh['status'] .. '|' .. seh['measured_at']
  end
  if current ~= ARGV[8] then
    return {'superseded', stored[1] or '0', stored[3] or ''}
  end
end
local ts = tonumber(ARGV[3])
if stored[1] then
  local stored_ts = tonumber(stored[1])
  if ts < stored_ts then
    return {'older', stored[1], stored[3]}
  end
  if ts == stored_ts then
    if stored[2] == ARGV[4] then
      local answer = {'duplicate', stored[1], stored[3]}
      for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
        answer[#answer + 1] = v
      end
      return answer
    end
    return {'conflict', stored[1], stored[3]}
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'f', ARGV[6], 'e', ARGV[7])
local fields = {'ts', ARGV[3], 'digest', ARGV[4], 'event_id', id}
for i = 12, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[9] == '-' then
  redis.call('HDEL', KEYS[1], 'ss')
elseif ARGV[9] ~= '' then
  redis.call('HSETNX', KEYS[1], 'ss', ARGV[9])
end
if ARGV[11] ~= '1' then
  redis.call('HDEL', KEYS[1], 'st')
end
redis.call('ZADD', KEYS[4], ARGV[10], ARGV[6])
redis.call('SADD', KEYS[5], ARGV[6])
local answer = {'applied', ARGV[3], id}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
  answer[#answer + 1] = v
end
return answer
