-- End a hold (arrived, cancelled, expired) exactly once.
-- KEYS[1] facility state hash (holds are its fields h:<need>), KEYS[2] announcement hash, KEYS[3] region expiry zset, KEYS[4] region stream
-- ARGV[1] announcement id, ARGV[2] how it ended, ARGV[3] ended at (ISO), ARGV[4] stream max length,
-- ARGV[5] facility id, ARGV[6] event JSON
if redis.call('HGET', KEYS[2], 'state') ~= 'active' then
  return {'gone', redis.call('HGET', KEYS[2], 'state') or ''}
end
local need = redis.call('HGET', KEYS[2], 'need')
if tonumber(redis.call('HINCRBY', KEYS[1], 'h:' .. need, -1)) <= 0 then
  redis.call('HDEL', KEYS[1], 'h:' .. need)
end
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'ended_at', ARGV[3])
redis.call('EXPIRE', KEYS[2], 86400)
redis.call('ZREM', KEYS[3], ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'f', ARGV[5], 'a', ARGV[6])
return {'ended', id}
