-- Units counted for one key in one span (polyroute-redis rate windows). KEYS as hit.lua; ARGV[1]: span in ms
-- (0 = the current UTC day).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local DAY = 86400000
local span = tonumber(ARGV[1])
if span == 0 then
  if tonumber(redis.call('HGET', KEYS[2], 'day') or '-1') == math.floor(now / DAY) then
    return tonumber(redis.call('HGET', KEYS[2], 'used') or '0')
  end
  return 0
end
local used = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - span), '+inf')) do
  used = used + (tonumber(string.match(m, ':(%d+)$')) or 0)
end
return used
