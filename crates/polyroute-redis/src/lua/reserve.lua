-- Hold ARGV[2] pico-USD against every scope, or against none (polyroute-redis budget; layout in budget.rs).
-- KEYS[1]: the reservation's settled marker; KEYS[2i], KEYS[2i+1]: scope i's hash and hold-expiry zset.
-- ARGV: id, amount (integer pico-USD), ttl (ms), then one limit per scope (integer pico-USD, '' = none).
-- Returns {1} placed, {2} already held or settled (nothing placed), {0, i, spent, held} refused by scope i.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, amount = ARGV[1], ARGV[2]
local n = (#KEYS - 1) / 2
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {2}
end
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  -- Expired holds (their process died or stalled) stop counting.
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
  if redis.call('ZSCORE', z, id) then
    return {2}
  end
end
for i = 1, n do
  local limit = ARGV[3 + i]
  if limit ~= '' then
    local h = KEYS[2 * i]
    local spent = redis.call('HGET', h, 'spent') or '0'
    local held = redis.call('HGET', h, 'held') or '0'
    if tonumber(spent) + tonumber(held) + tonumber(amount) > tonumber(limit) then
      return {0, i, spent, held}
    end
  end
end
local expires = now + tonumber(ARGV[3])
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  redis.call('HSET', h, 'h:' .. id, amount)
  if amount ~= '0' then
    redis.call('HINCRBY', h, 'held', amount)
  end
  redis.call('ZADD', z, expires, id)
end
return {1}
