-- Count ARGV[1] units for one key in every window, or in none (polyroute-redis rate windows; layout in rate.rs).
-- KEYS[1]: the key's event log (sorted set: "<ms>:<seq>:<units>" scored by ms);
-- KEYS[2]: its hash: seq, day, used (units counted that UTC day), and per sliding span s tracked so far
--          'w:<s>' = '<cutoff ms>:<units of the logged events after cutoff>'.
-- ARGV: units, the log's minimum retention (ms), the number of windows, then per window: limit, span in ms
-- (0 = the current UTC day).
-- Returns {1} counted, or {0, i, wait_ms}: window i is full and has room again in wait_ms (nothing counted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local DAY = 86400000
local log, meta = KEYS[1], KEYS[2]
local units = tonumber(ARGV[1])
local nw = tonumber(ARGV[3])

local function units_of(m)
  return tonumber(string.match(m, ':(%d+)$')) or 0
end
-- Units of the logged events with a time in (lo, hi].
local function sum_range(lo, hi)
  local s = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', log, '(' .. lo, hi)) do
    s = s + units_of(m)
  end
  return s
end

local spans, day, day_used = {}, -1, 0
local h = redis.call('HGETALL', meta)
for j = 1, #h, 2 do
  local f, v = h[j], h[j + 1]
  if string.sub(f, 1, 2) == 'w:' then
    local c, s = string.match(v, '^(-?%d+):(%d+)$')
    if c then
      spans[tonumber(string.sub(f, 3))] = {tonumber(c), tonumber(s)}
    end
  elseif f == 'day' then
    day = tonumber(v)
  elseif f == 'used' then
    day_used = tonumber(v)
  end
end
for i = 1, nw do
  local span = tonumber(ARGV[3 + 2 * i])
  if span > 0 and not spans[span] then
    spans[span] = {now - span, sum_range(now - span, '+inf')}
  end
end
-- Slide every tracked window to now: subtract the events that left it (each event leaves once: amortized O(1)).
local keep = tonumber(ARGV[2])
for span, st in pairs(spans) do
  local cut = now - span
  if cut >= st[1] + span then
    -- Idle for a whole span (the log may even have expired): what is inside now was logged after `cut`.
    st[1], st[2] = cut, sum_range(cut, '+inf')
  elseif cut > st[1] then
    st[2] = st[2] - sum_range(st[1], cut)
    st[1] = cut
  elseif cut < st[1] then
    -- The server's clock went back: recount.
    st[1], st[2] = cut, sum_range(cut, '+inf')
  end
  if span > keep then
    keep = span
  end
end
redis.call('ZREMRANGEBYSCORE', log, '-inf', '(' .. (now - keep))
local function save()
  local args = {}
  for span, st in pairs(spans) do
    args[#args + 1] = 'w:' .. span
    args[#args + 1] = st[1] .. ':' .. st[2]
  end
  if #args > 0 then
    redis.call('HSET', meta, unpack(args))
  end
end

local today = math.floor(now / DAY)
if day ~= today then
  day_used = 0
end
for i = 1, nw do
  local limit = tonumber(ARGV[2 + 2 * i])
  local span = tonumber(ARGV[3 + 2 * i])
  if span == 0 then
    if day_used + units > limit then
      save()
      return {0, i, DAY - (now % DAY)}
    end
  else
    local used = spans[span][2]
    if used + units > limit then
      -- The oldest events leave first: wait until enough of them have left.
      local left = used + units - limit
      local wait = span
      local off = 0
      while left > 0 do
        local ev = redis.call('ZRANGEBYSCORE', log, '(' .. (now - span), '+inf', 'WITHSCORES', 'LIMIT', off, 64)
        if #ev == 0 then
          break
        end
        for j = 1, #ev, 2 do
          wait = tonumber(ev[j + 1]) + span - now
          left = left - units_of(ev[j])
          if left <= 0 then
            break
          end
        end
        off = off + 64
      end
      save()
      return {0, i, wait}
    end
  end
end

if units > 0 then
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', log, now, now .. ':' .. seq .. ':' .. ARGV[1])
  redis.call('PEXPIRE', log, keep + 60000)
  for _, st in pairs(spans) do
    st[2] = st[2] + units
  end
end
save()
if day == today then
  redis.call('HINCRBY', meta, 'used', ARGV[1])
else
  redis.call('HSET', meta, 'day', today, 'used', ARGV[1])
end
redis.call('PEXPIRE', meta, math.max(keep, DAY) + DAY)
return {1}
