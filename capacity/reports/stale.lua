-- Announce, once, each facility whose figures went stale: compare-and-set on the region's cursor.
-- KEYS[1] staleness timers, KEYS[2] the cursor (up to which moment stale events went out),
-- KEYS[3] region stream, KEYS[4] ready mark
-- ARGV[1] the cursor the caller read, ARGV[2] the new cursor (now, epoch ms), ARGV[3] stream
-- max length, then facility id / event JSON pairs the caller found between the two.
-- Answers the number of events added (0 when another worker moved the cursor first).
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 0
end
local cursor = redis.call('GET', KEYS[2])
if (cursor or '') ~= ARGV[1] then
  return 0
end
local added = 0
for i = 4, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[2]) then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'k', ARGV[i + 1])
    added = added + 1
  end
end
redis.call('SET', KEYS[2], ARGV[2])
return added
