-- Apply one report atomically: the only place a facility's live state is written.
-- KEYS[1] facility state hash, KEYS[2] region event stream, KEYS[3] region ready mark,
-- KEYS[4] region SEH-expiry timers, KEYS[5] region staleness timers
-- ARGV[1] measured_at (epoch ms), ARGV[2] report digest, ARGV[3] stream max length,
-- ARGV[4] facility id, ARGV[5] event JSON,
-- ARGV[6] the SEH field the report expects to replace ('' = any; a system report such as a
--         stop's expiry only applies while the stop it expires is still the stored status),
-- ARGV[7] the SEH expiry timer: '' leave it, '-' clear it, else its moment (epoch ms),
-- ARGV[8] when these figures go stale (epoch ms), ARGV[9..] field/value pairs to write
-- Answers {outcome, stored or applied ts, event id, state fields...}; the state (the
-- facility hash after this report) is what the SQL record keeps with the event.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {'not_ready', '0', ''}
end
local stored = redis.call('HMGET', KEYS[1], 'ts', 'digest', 'event_id', 'seh')
if ARGV[6] ~= '' and stored[4] ~= ARGV[6] then
  return {'superseded', stored[1] or '0', stored[3] or ''}
end
local ts = tonumber(ARGV[1])
if stored[1] then
  local stored_ts = tonumber(stored[1])
  if ts < stored_ts then
    return {'older', stored[1], stored[3]}
  end
  if ts == stored_ts then
    if stored[2] == ARGV[2] then
      local answer = {'duplicate', stored[1], stored[3]}
      for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
        answer[#answer + 1] = v
      end
      return answer
    end
    return {'conflict', stored[1], stored[3]}
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[4], 'e', ARGV[5])
local fields = {'ts', ARGV[1], 'digest', ARGV[2], 'event_id', id}
for i = 9, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[7] == '-' then
  redis.call('ZREM', KEYS[4], ARGV[4])
elseif ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[4])
end
redis.call('ZADD', KEYS[5], ARGV[8], ARGV[4])
local answer = {'applied', ARGV[1], id}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
  answer[#answer + 1] = v
end
return answer
