-- Count ARGV[1] units for one key in every window, or in none (polyroute-redis rate windows; layout in rate.rs).
-- KEYS[1]: the key's event log (sorted set: "<ms>:<seq>:<units>" scored by ms); KEYS[2]: its hash (seq, day, used).
-- ARGV: units, how long the log keeps events (ms), the number of windows, then per window: limit, span in ms
-- (0 = the current UTC day).
-- Returns {1} counted, or {0, i, wait_ms}: window i is full and has room again in wait_ms (nothing counted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local DAY = 86400000
local log, meta = KEYS[1], KEYS[2]
local units = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', log, '-inf', '(' .. (now - keep))
local today = math.floor(now / DAY)
local day_used = 0
if tonumber(redis.call('HGET', meta, 'day') or '-1') == today then
  day_used = tonumber(redis.call('HGET', meta, 'used') or '0')
end
local function units_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end
for i = 1, tonumber(ARGV[3]) do
  local limit = tonumber(ARGV[2 + 2 * i])
  local span = tonumber(ARGV[3 + 2 * i])
  if span == 0 then
    if day_used + units > limit then
      return {0, i, DAY - (now % DAY)}
    end
  else
    -- A sliding window counts the events in (now - span, now]: an exact log, no approximation.
    local ev = redis.call('ZRANGEBYSCORE', log, '(' .. (now - span), '+inf', 'WITHSCORES')
    local used = 0
    for j = 1, #ev, 2 do
      used = used + units_of(ev[j])
    end
    if used + units > limit then
      -- The oldest events leave first: wait until enough of them have left.
      local left = used + units - limit
      local wait = span
      for j = 1, #ev, 2 do
        wait = tonumber(ev[j + 1]) + span - now
        left = left - units_of(ev[j])
        if left <= 0 then
          break
        end
      end
      return {0, i, wait}
    end
  end
end
if units > 0 then
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', log, now, now .. ':' .. seq .. ':' .. ARGV[1])
  redis.call('PEXPIRE', log, keep + 60000)
end
if tonumber(redis.call('HGET', meta, 'day') or '-1') == today then
  redis.call('HINCRBY', meta, 'used', ARGV[1])
else
  redis.call('HSET', meta, 'day', today, 'used', ARGV[1])
end
redis.call('PEXPIRE', meta, math.max(keep, DAY) + DAY)
return {1}
