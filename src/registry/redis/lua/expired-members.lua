-- Instances whose last beat is older than ARGV[1] ms by the Redis clock.
-- KEYS[1] members zset.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now_ms - tonumber(ARGV[1])))
