-- A token bucket shared by every worker: one hash per key, refilled by the time passed
-- (Redis' own clock, so workers' clocks never disagree). Included at the top of the
-- scripts that charge a key (bucket.lua, apply.lua): its one definition.
-- take_tokens(bucket key, tokens per second, burst, tokens that must be there, most tokens taken)
-- returns 0 and the tokens taken (at most what is there) when it passes, else the milliseconds
-- until it would and 0. A rate of 0: no limit.
local function take_tokens(key, per_s, burst, need, take)
  local rate = tonumber(per_s) / 1000
  if rate <= 0 then
    return 0, tonumber(take)
  end
  burst = tonumber(burst)
  need = tonumber(need)
  take = tonumber(take)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local stored = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(stored[1]) or burst
  local at = tonumber(stored[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < need then
    return math.ceil((need - tokens) / rate), 0
  end
  local taken = take
  if need > 0 then
    taken = math.min(take, math.floor(tokens))  -- a lease takes what is there, up to `take`
  end
  if taken > 0 then
    redis.call('HSET', key, 'tokens', tostring(math.max(0, tokens - taken)), 'at', now)
    redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
  end
  return 0, taken
end
