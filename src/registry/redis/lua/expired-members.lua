-- Instances that are dead as judged by ARGV[2]: their last beat is older than ARGV[1] ms by the
-- Redis clock, and Redis has processed the judge's own last ARGV[3] beats since it. A Redis that
-- stalled processed nobody's beats, so it makes nobody look dead however late it answers.
-- An instance without stamps (beating with an earlier release) is judged by the clock alone.
-- KEYS[1] members zset, KEYS[2] beat counter, KEYS[3] beat stamps hash (see heartbeat.lua).
-- ARGV: expiry ms, judging instance, how many of its own beats must follow the other's last one.
-- Returns the dead instances.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local late = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now_ms - tonumber(ARGV[1])))
if #late == 0 then
  return late
end

local function stamps_of(instance)
  local stamps = {}
  for value in string.gmatch(redis.call('HGET', KEYS[3], instance) or '', '%d+') do
    stamps[#stamps + 1] = tonumber(value)
  end
  return stamps
end

local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local mine = stamps_of(ARGV[2])
local needed = tonumber(ARGV[3])
local dead = {}
for _, instance in ipairs(late) do
  local theirs = stamps_of(instance)
  local last = theirs[#theirs]
  if last == nil then
    dead[#dead + 1] = instance
  elseif last > counter then
    -- The counter went back (Redis lost it): count the judge's beats from now on.
    redis.call('HSET', KEYS[3], instance, string.format('%.0f', counter))
  elseif #mine >= needed and mine[#mine - needed + 1] > last then
    dead[#dead + 1] = instance
  end
end
return dead
