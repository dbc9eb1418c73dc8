-- Customer figures: apply, reverse or restore one order's contribution, atomically, at most once.
-- The one definition of the figures' arithmetic: live tagging and the rebuild from MongoDB both
-- go through it. Keys share the hash tag {customer_id}, so one customer's keys live on one slot.
--   KEYS[1] contribution (hash, per order)  KEYS[2] totals (hash)
--   KEYS[3] spend by day (hash, epoch day -> cents)  KEYS[4] recent orders (zset, order_no -> ts)
--   KEYS[5] the figures' epoch marker (hash), written when the figures were last (re)built
-- apply:   ARGV = 'apply', order_no, cents, ts, day, window_days, keep_recent, ttl_s
--          returns the figures as they stood before this order (JSON), stored with the
--          contribution so a replay gets exactly the same answer.
-- reverse: ARGV = 'reverse', order_no   -> 1 if reversed now, 0 if already reversed or unknown
-- restore: ARGV = 'restore', order_no, cents, ts, day, window_days, keep_recent, ttl_s,
--          snapshot, state ('applied' | 'reversed'): a stored order's contribution, during a
--          rebuild (the only action allowed while the epoch marker is missing); once per order.
-- Without the epoch marker the figures are not loaded (Redis was flushed or lost its data):
-- apply and reverse refuse with a NOEPOCH error rather than count from zero.
local contribution, totals, by_day, recent, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local action, order_no = ARGV[1], ARGV[2]

if action ~= 'restore' and redis.call('EXISTS', epoch) == 0 then
  return redis.error_reply('NOEPOCH missing: customer figures not loaded; rebuild from MongoDB')
end

local function remove_contribution(cents, day)
  redis.call('HINCRBY', totals, 'count', -1)
  redis.call('HINCRBY', totals, 'spend', -cents)
  redis.call('HINCRBY', by_day, day, -cents)
  redis.call('ZREM', recent, order_no)
  redis.call('HSET', contribution, 'state', 'reversed')
end

if action == 'reverse' then
  local c = redis.call('HMGET', contribution, 'state', 'cents', 'day')
  if c[1] ~= 'applied' then return 0 end
  remove_contribution(tonumber(c[2]), c[3])
  return 1
end

local cents, ts, day = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window_days, keep_recent, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

-- Adds the order to the totals, the day's spend and the recent orders; first/last order times
-- count every order ever placed (a reversal does not move them).
local function add_contribution()
  redis.call('HINCRBY', by_day, day, cents)
  redis.call('ZADD', recent, ts, order_no)
  redis.call('ZREMRANGEBYRANK', recent, 0, -(keep_recent + 1))
  redis.call('HINCRBY', totals, 'count', 1)
  redis.call('HINCRBY', totals, 'spend', cents)
  local first = redis.call('HGET', totals, 'first_at')
  if not first or ts < tonumber(first) then redis.call('HSET', totals, 'first_at', ARGV[4]) end
  local last = tonumber(redis.call('HGET', totals, 'last_at') or '0')
  if ts > last then redis.call('HSET', totals, 'last_at', ARGV[4]) end
end

-- The spend of the window ending on this order's day; days long out of any window are dropped.
local function window_spend()
  local spend = 0
  local days = redis.call('HGETALL', by_day)
  for i = 1, #days, 2 do
    local d = tonumber(days[i])
    if d > day - window_days and d <= day then
      spend = spend + tonumber(days[i + 1])
    elseif d <= day - window_days - 31 then
      redis.call('HDEL', by_day, days[i])
    end
  end
  return spend
end

local function store_contribution(snapshot, state)
  redis.call('HSET', contribution, 'snapshot', snapshot, 'state', state, 'cents', cents,
    'day', day, 'ts', ARGV[4])
  redis.call('EXPIRE', contribution, ttl)
end

if action == 'restore' then
  -- at most once too: a rebuild that lost its lock may still land a chunk beside the next one
  if redis.call('EXISTS', contribution) == 1 then return 0 end
  add_contribution()
  window_spend()
  store_contribution(ARGV[9], 'applied')
  if ARGV[10] == 'reversed' then remove_contribution(cents, day) end
  return 1
end

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
local recent_flat = redis.call('ZREVRANGEBYSCORE', recent, ts, '-inf', 'WITHSCORES', 'LIMIT', 0, keep_recent)
local recent_times = {}
for i = 2, #recent_flat, 2 do recent_times[#recent_times + 1] = tonumber(recent_flat[i]) end

add_contribution()
local snapshot = cjson.encode({
  prior_order_count = tonumber(prior[1] or '0'),
  prior_lifetime_cents = tonumber(prior[2] or '0'),
  spend_365d_cents = window_spend(),
  recent_order_times = recent_times,
  first_order_at = prior[3] and tonumber(prior[3]) or cjson.null,
})
store_contribution(snapshot, 'applied')
return snapshot
