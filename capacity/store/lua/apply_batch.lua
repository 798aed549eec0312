-- Apply the reports of one document (several facilities) atomically: all or none.
-- For item i (1-based), KEYS[4i-3] facility state hash, KEYS[4i-2] its region's stream,
-- KEYS[4i-1] its region's ready mark, KEYS[4i] its region's staleness timers; KEYS[4n+i] the
-- facility set of item i's region.
-- ARGV[1] item count, ARGV[2] stream max length, then per item: measured_at (epoch ms),
--   digest, facility id, event JSON, stop mark ('' leave, '-' clear, else when the stop
--   began), stale at (epoch ms), n, then n field/value strings (as apply.lua, which applies
--   one report and documents every field).
-- Answers {'not_ready'|'older'|'conflict', item, stored ts, stored event id} and applies
-- nothing, or {'applied', {outcome, ts, event id, state fields...} per item}; an item that
-- repeats exactly what is stored is 'duplicate' and adds no event.
local count = tonumber(ARGV[1])
local items = {}
local at = 3
for i = 1, count do
  local n = tonumber(ARGV[at + 6])
  items[i] = {
    ts = tonumber(ARGV[at]), raw = ARGV[at], digest = ARGV[at + 1], facility = ARGV[at + 2], event = ARGV[at + 3],
    stop = ARGV[at + 4], stale = ARGV[at + 5], first = at + 7, n = n
  }
  at = at + 7 + n
end
for i = 1, count do
  local item = items[i]
  if redis.call('EXISTS', KEYS[4 * i - 1]) == 0 then
    return {'not_ready', tostring(i), '0', ''}
  end
  local stored = redis.call('HMGET', KEYS[4 * i - 3], 'ts', 'digest', 'event_id')
  if stored[1] then
    local stored_ts = tonumber(stored[1])
    if item.ts < stored_ts then
      return {'older', tostring(i), stored[1], stored[3]}
    end
    if item.ts == stored_ts then
      if stored[2] ~= item.digest then
        return {'conflict', tostring(i), stored[1], stored[3]}
      end
      item.duplicate = stored[3]
    end
  end
end
local answers = {}
for i = 1, count do
  local item = items[i]
  local outcome, id = 'duplicate', item.duplicate
  local hash = KEYS[4 * i - 3]
  if not id then
    outcome = 'applied'
    id = redis.call('XADD', KEYS[4 * i - 2], 'MAXLEN', '~', ARGV[2], '*', 'f', item.facility, 'e', item.event)
    local fields = {'ts', item.raw, 'digest', item.digest, 'event_id', id}
    for j = item.first, item.first + item.n - 1 do
      fields[#fields + 1] = ARGV[j]
    end
    redis.call('HSET', hash, unpack(fields))
    if item.stop == '-' then
      redis.call('HDEL', hash, 'ss')
    elseif item.stop ~= '' then
      redis.call('HSETNX', hash, 'ss', item.stop)
    end
    redis.call('HDEL', hash, 'st')
    redis.call('ZADD', KEYS[4 * i], item.stale, item.facility)
    redis.call('SADD', KEYS[4 * count + i], item.facility)
  end
  local answer = {outcome, item.raw, id}
  for _, v in ipairs(redis.call('HGETALL', hash)) do
    answer[#answer + 1] = v
  end
  answers[i] = answer
end
return {'applied', answers}
