-- Apply one report atomically: the only place live state is written.
-- KEYS[1] facility state hash, KEYS[2] region event stream
-- ARGV[1] measured_at (epoch ms), ARGV[2] report digest, ARGV[3] stream max length,
-- ARGV[4] facility id, ARGV[5] event JSON, ARGV[6..] field/value pairs to write
local stored = redis.call('HMGET', KEYS[1], 'ts', 'digest', 'event_id')
local ts = tonumber(ARGV[1])
if stored[1] then
  local stored_ts = tonumber(stored[1])
  if ts < stored_ts then
    return {'older', stored[1], stored[3]}
  end
  if ts == stored_ts then
    if stored[2] == ARGV[2] then
      return {'duplicate', stored[1], stored[3]}
    end
    return {'conflict', stored[1], stored[3]}
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[4], 'e', ARGV[5])
local fields = {'ts', ARGV[1], 'digest', ARGV[2], 'event_id', id}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
return {'applied', ARGV[1], id}
