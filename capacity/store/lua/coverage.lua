-- Publish a region's coverage figures if they changed since the last published ones.
-- KEYS[1] last published signature, KEYS[2] region stream, KEYS[3] region ready mark
-- ARGV[1] signature now, ARGV[2] entry JSON, ARGV[3] stream max length, ARGV[4] baseline signature
-- Answers 1 published, 0 unchanged (or first seen at the baseline), -1 region being rebuilt.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return -1
end
local stored = redis.call('GET', KEYS[1])
if stored == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
if not stored and ARGV[1] == ARGV[4] then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[2])
return 1
