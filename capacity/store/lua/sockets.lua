-- A key's open websockets across workers, as a sorted set of slot -> expiry (Redis' clock).
-- A worker renews its slots; a crashed worker's slots expire on their own.
-- KEYS[1] the key's set
-- ARGV[1] ttl in ms, ARGV[2] most slots (0: renew only), ARGV[3..] slots
-- Admit (ARGV[2] > 0, one slot): 1 when taken, 0 when the key has ARGV[2] open already.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[1])
local most = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if most > 0 then
  if redis.call('ZCARD', KEYS[1]) >= most then
    return 0
  end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
else
  for i = 3, #ARGV do
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
