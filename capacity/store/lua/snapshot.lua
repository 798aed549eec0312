-- A region's whole live state and the stream id it reflects, in one atomic step: what a
-- worker's replica loads at start and after a rebuild marker, before it follows the stream.
-- KEYS[1] the region's facility set, KEYS[2] its announcement expiry set, KEYS[3] its stream,
-- KEYS[4] its ready mark
-- ARGV[1] the facility hash key's prefix (cap:{R}:fac:), ARGV[2] the announcement key's prefix
-- Answers {last stream id or '', ready 1/0, {facility id, {hash fields...}}..., '|',
-- {announcement id, {hash fields...}}...}.
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local answer = {last[1] and last[1][1] or '', redis.call('EXISTS', KEYS[4])}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  answer[#answer + 1] = id
  answer[#answer + 1] = redis.call('HGETALL', ARGV[1] .. id)
end
answer[#answer + 1] = '|'
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  answer[#answer + 1] = id
  answer[#answer + 1] = redis.call('HGETALL', ARGV[2] .. id)
end
return answer
