-- Live holds of one scope (polyroute-redis budget): drop the expired ones, answer the sum (integer pico-USD).
-- KEYS[1], KEYS[2]: the scope's hash and hold-expiry zset.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h, z = KEYS[1], KEYS[2]
local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
for _, rid in ipairs(gone) do
  local a = redis.call('HGET', h, 'h:' .. rid)
  if a then
    redis.call('HDEL', h, 'h:' .. rid)
    if a ~= '0' then
      redis.call('HINCRBY', h, 'held', '-' .. a)
    end
  end
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
end
return redis.call('HGET', h, 'held') or '0'
