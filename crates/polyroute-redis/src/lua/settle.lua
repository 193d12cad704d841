-- End reservation ARGV[1] once: remove its hold from every scope and add the billed cost (polyroute-redis budget).
-- KEYS[1]: the reservation's settled marker; KEYS[2i], KEYS[2i+1]: scope i's hash and hold-expiry zset.
-- ARGV: id, billed (integer pico-USD, '' = release without billing), how long to remember the id (ms).
-- Returns 1 when applied, 0 when the id was already settled (nothing changes: a replay never bills twice).
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  return 0
end
local id, billed = ARGV[1], ARGV[2]
for i = 1, (#KEYS - 1) / 2 do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  local a = redis.call('HGET', h, 'h:' .. id)
  if a then
    redis.call('HDEL', h, 'h:' .. id)
    if a ~= '0' then
      redis.call('HINCRBY', h, 'held', '-' .. a)
    end
  end
  redis.call('ZREM', z, id)
  if billed ~= '' and billed ~= '0' then
    redis.call('HINCRBY', h, 'spent', billed)
  end
end
return 1
