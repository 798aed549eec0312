-- A token bucket shared by every worker: one hash per key, refilled by the time passed
-- (Redis' own clock, so workers' clocks never disagree).
-- KEYS[1] the bucket
-- ARGV[1] tokens per second, ARGV[2] burst (bucket size),
-- ARGV[3] tokens that must be there to pass, ARGV[4] tokens taken when it passes
-- Returns {1, 0} when it passes, else {0, milliseconds until it would}.
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local need = tonumber(ARGV[3])
local take = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1]) or burst
local at = tonumber(stored[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens < need then
  return {0, math.ceil((need - tokens) / rate)}
end
if take > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.max(0, tokens - take)), 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
end
return {1, 0}
