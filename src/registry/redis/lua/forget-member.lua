-- Removes a reaped instance from the member tables, unless it beat again in the
-- meantime (it was only slow; it re-registers its sessions itself).
-- KEYS[1] members zset, KEYS[2] member info hash, KEYS[3] pods hash, KEYS[4] beat stamps hash.
-- ARGV: instance, expiry ms, "1" to remove regardless of its last beat (predecessor of a restarted pod).
-- Returns 1 when removed, 0 when the instance is alive again (or already gone).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and score then
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  if tonumber(score) > now_ms - tonumber(ARGV[2]) then
    return 0
  end
end
local info = redis.call('HGET', KEYS[2], ARGV[1])
if info then
  local pod = string.match(info, '|([^|]*)$')
  if pod and redis.call('HGET', KEYS[3], pod) == ARGV[1] then
    redis.call('HDEL', KEYS[3], pod)
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
