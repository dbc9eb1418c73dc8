-- Customer figures: apply or reverse one order's contribution, atomically and at most once.
-- Keys share the hash tag {customer_id}, so one customer's keys live on one Redis Cluster slot.
--   KEYS[1] contribution (hash, per order)  KEYS[2] totals (hash)
--   KEYS[3] spend by day (hash, epoch day -> cents)  KEYS[4] recent orders (zset, order_no -> ts)
-- apply:   ARGV = 'apply', order_no, cents, ts, day, window_days, keep_recent, ttl_s
--          returns the figures as they stood before this order (JSON), stored with the
--          contribution so a replay gets exactly the same answer.
-- reverse: ARGV = 'reverse', order_no   -> 1 if reversed now, 0 if already reversed or unknown
local contribution, totals, by_day, recent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local action, order_no = ARGV[1], ARGV[2]

if action == 'reverse' then
  local c = redis.call('HMGET', contribution, 'state', 'cents', 'day')
  if c[1] ~= 'applied' then return 0 end
  redis.call('HINCRBY', totals, 'count', -1)
  redis.call('HINCRBY', totals, 'spend', -tonumber(c[2]))
  redis.call('HINCRBY', by_day, c[3], -tonumber(c[2]))
  redis.call('ZREM', recent, order_no)
  redis.call('HSET', contribution, 'state', 'reversed')
  return 1
end

local cents, ts, day = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window_days, keep_recent, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

local existing = redis.call('HMGET', contribution, 'snapshot', 'state', 'cents', 'day')
if existing[1] then
  -- Seen before. An update that changed the amount moves the spend by the difference, once.
  local old = tonumber(existing[3])
  if existing[2] == 'applied' and old ~= cents then
    redis.call('HINCRBY', totals, 'spend', cents - old)
    redis.call('HINCRBY', by_day, existing[4], cents - old)
    redis.call('HSET', contribution, 'cents', cents)
  end
  return existing[1]
end

local prior = redis.call('HMGET', totals, 'count', 'spend', 'first_at')
local prior_count, prior_spend = tonumber(prior[1] or '0'), tonumber(prior[2] or '0')

redis.call('HINCRBY', by_day, day, cents)
local spend_window = 0
local days = redis.call('HGETALL', by_day)
for i = 1, #days, 2 do
  local d = tonumber(days[i])
  if d > day - window_days and d <= day then
    spend_window = spend_window + tonumber(days[i + 1])
  elseif d <= day - window_days - 31 then
    redis.call('HDEL', by_day, days[i])
  end
end

local recent_flat = redis.call('ZREVRANGEBYSCORE', recent, ts, '-inf', 'WITHSCORES', 'LIMIT', 0, keep_recent)
local recent_times = {}
for i = 2, #recent_flat, 2 do recent_times[#recent_times + 1] = tonumber(recent_flat[i]) end
redis.call('ZADD', recent, ts, order_no)
redis.call('ZREMRANGEBYRANK', recent, 0, -(keep_recent + 1))

redis.call('HINCRBY', totals, 'count', 1)
redis.call('HINCRBY', totals, 'spend', cents)
if not prior[3] or ts < tonumber(prior[3]) then redis.call('HSET', totals, 'first_at', ARGV[4]) end
local last = tonumber(redis.call('HGET', totals, 'last_at') or '0')
if ts > last then redis.call('HSET', totals, 'last_at', ARGV[4]) end

local snapshot = cjson.encode({
  prior_order_count = prior_count,
  prior_lifetime_cents = prior_spend,
  spend_365d_cents = spend_window,
  recent_order_times = recent_times,
  first_order_at = prior[3] and tonumber(prior[3]) or cjson.null,
})
redis.call('HSET', contribution, 'snapshot', snapshot, 'state', 'applied', 'cents', cents,
  'day', day, 'ts', ARGV[4])
redis.call('EXPIRE', contribution, ttl)
return snapshot
