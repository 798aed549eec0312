-- Announce a patient: check that a place is free and hold it, in one step.
-- KEYS[1] facility state hash (holds are its fields h:<need>), KEYS[2] announcement hash,
-- KEYS[3] region expiry zset, KEYS[4] region stream, KEYS[5] region ready mark
-- ARGV[1] need ('seh' or a unit type), ARGV[2] announcement id, ARGV[3] expires (epoch ms),
-- ARGV[4] stream max length, ARGV[5] facility id, ARGV[6] announcement JSON (for the stream),
-- ARGV[7..] field/value pairs of the announcement hash
-- Answers {'held', event id, free after or ''} or {reason, detail}.
if redis.call('EXISTS', KEYS[5]) == 0 then
  return {'not_ready', ''}
end
local need = ARGV[1]
local held = tonumber(redis.call('HGET', KEYS[1], 'h:' .. need) or '0')
if need == 'seh' or need == 'seh_places' then
  -- an SEH announcement holds an SEH place: both kinds of hold count against seh_places
  held = tonumber(redis.call('HGET', KEYS[1], 'h:seh') or '0') + tonumber(redis.call('HGET', KEYS[1], 'h:seh_places') or '0')
end
local unit_field = need
if need == 'seh' then
  local raw = redis.call('HGET', KEYS[1], 'seh')
  if not raw then
    return {'seh_unknown', ''}
  end
  local status = cjson.decode(raw)['status']
  if status ~= 'open' and status ~= 'busy' then
    return {'seh_not_taking', status}
  end
  unit_field = 'seh_places'
end
local free = ''
local raw_unit = redis.call('HGET', KEYS[1], 'u:' .. unit_field)
if raw_unit then
  local available = cjson.decode(raw_unit)['available']
  if available == cjson.null or available == nil then
    if need ~= 'seh' then
      return {'unknown', ''}
    end
  else
    if available - held < 1 then
      return {'no_free_place', tostring(available - held)}
    end
    free = tostring(available - held - 1)
  end
elseif need ~= 'seh' then
  return {'unknown', ''}
end
redis.call('HINCRBY', KEYS[1], 'h:' .. need, 1)
local fields = {}
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], 'state', 'active', unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'f', ARGV[5], 'a', ARGV[6])
return {'held', id, free}
