-- Announce, once, each facility whose figures went stale: compare-and-set on the region's cursor.
-- KEYS[1] staleness timers, KEYS[2] the cursor (up to which moment stale notices went out),
-- KEYS[3] region stream, KEYS[4] ready mark
-- ARGV[1] the cursor the caller read, ARGV[2] the new cursor (now, epoch ms), ARGV[3] stream
-- max length, ARGV[4] the facility hash key's prefix (cap:{R}:fac:), then triples the caller
-- found between the two cursors: facility id, stale since (ISO), notice JSON.
-- Each notice marks the facility hash stale (field st) in the same step as its stream entry.
-- Answers {notices added, the cursor now}: {0, their cursor} when another worker moved it first.
if redis.call('EXISTS', KEYS[4]) == 0 then
  return {0, ARGV[1]}
end
local cursor = redis.call('GET', KEYS[2])
if (cursor or '') ~= ARGV[1] then
  return {0, cursor or ''}
end
local added = 0
for i = 5, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[2]) then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[i], 'k', ARGV[i + 2])
    redis.call('HSET', ARGV[4] .. ARGV[i], 'st', ARGV[i + 1])
    added = added + 1
  end
end
redis.call('SET', KEYS[2], ARGV[2])
return {added, ARGV[2]}
