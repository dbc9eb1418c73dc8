-- Customer figures: apply, reverse or restore one order's contribution, atomically, at most once.
-- The one definition of the figures' arithmetic: live tagging and the rebuild from MongoDB both
-- go through it. Keys share the hash tag {customer_id}, so one customer's keys live on one slot.
--   KEYS[1] contribution (hash, per order)  KEYS[2] totals (hash)
--   KEYS[3] spend by day (hash, epoch day -> cents)  KEYS[4] recent orders (zset, order_no -> ts)
--   KEYS[5] by category (hash, 'o|day|category' -> orders, 'c|day|category' -> cents)
--   KEYS[6] products (hash, sku -> creation times of the held orders with it, 't1,t2,...')
--   KEYS[7] the figures' epoch marker (hash), written when the figures were last (re)built
-- apply:   ARGV = 'apply', order_no, cents, ts, day, window_days, keep_recent, stored_recent, ttl_s,
--          categories (JSON {category: line cents}), skus (JSON [sku, ...])
--          returns the figures as they stood before this order (JSON), stored with the
--          contribution so a replay gets exactly the same answer.
-- reverse: ARGV = 'reverse', order_no   -> 1 if reversed now, 0 if already reversed or unknown
-- restore: ARGV = 'restore', order_no, cents, ts, day, window_days, keep_recent, stored_recent, ttl_s,
--          categories, skus, snapshot, state ('applied' | 'reversed'): a stored order's
--          contribution, during a rebuild (the only action allowed while the epoch marker is
--          missing); once per order.
-- Without the epoch marker the figures are not loaded (Redis was flushed or lost its data):
-- apply and reverse refuse with a NOEPOCH error rather than count from zero.
local contribution, totals, by_day, recent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local by_category, products, epoch = KEYS[5], KEYS[6], KEYS[7]
local action, order_no = ARGV[1], ARGV[2]

if action ~= 'restore' and redis.call('EXISTS', epoch) == 0 then
  return redis.error_reply('NOEPOCH missing: customer figures not loaded; rebuild from MongoDB')
end

-- A SKU's field holds the creation times of the customer's held orders with it (sorted, comma
-- separated): its count and its first purchase stay exact whichever order is reversed or edited.
local function move_time(sku, ts, sign)
  local times = {}
  local raw = redis.call('HGET', products, sku)
  if raw then for t in string.gmatch(raw, '[^,]+') do times[#times + 1] = t end end
  if sign > 0 then
    -- into its place from the end (orders mostly come in time order): no sort of the whole
    -- list per order, which made a customer's 10,000th order of one SKU cost 100 ms
    local at, value = #times + 1, tonumber(ts)
    while at > 1 and tonumber(times[at - 1]) > value do at = at - 1 end
    table.insert(times, at, ts)
  else
    for i = 1, #times do
      if times[i] == ts then table.remove(times, i) break end
    end
  end
  if #times == 0 then
    redis.call('HDEL', products, sku)
  else
    redis.call('HSET', products, sku, table.concat(times, ','))
  end
end

-- An order's categories (line cents each) and SKUs, counted in or out (sign 1 or -1); ts is
-- the order's creation time as stored with its contribution (a string).
local function count_items(cats_json, skus_json, day, ts, sign)
  local cats = cjson.decode(cats_json or '{}')
  for category, cat_cents in pairs(cats) do
    local orders_field, cents_field = 'o|' .. day .. '|' .. category, 'c|' .. day .. '|' .. category
    if redis.call('HINCRBY', by_category, orders_field, sign) <= 0 then
      redis.call('HDEL', by_category, orders_field, cents_field)
    else
      redis.call('HINCRBY', by_category, cents_field, sign * tonumber(cat_cents))
    end
  end
  for _, sku in ipairs(cjson.decode(skus_json or '[]')) do move_time(sku, ts, sign) end
end

local function remove_contribution(cents, day)
  local items = redis.call('HMGET', contribution, 'cats', 'skus', 'ts')
  count_items(items[1], items[2], day, items[3], -1)
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
local window_days, keep_recent, stored_recent = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local ttl, cats_json, skus_json = tonumber(ARGV[9]), ARGV[10], ARGV[11]

-- Adds the order to the totals, the day's spend and the recent orders; first/last order times
-- count every order ever placed (a reversal does not move them).
local function add_contribution()
  count_items(cats_json, skus_json, day, ARGV[4], 1)
  redis.call('HINCRBY', by_day, day, cents)
  redis.call('ZADD', recent, ts, order_no)
  -- stored_recent >= keep_recent: a margin for reversals (figure_keys.RECENT_ORDERS_WITH_MARGIN)
  redis.call('ZREMRANGEBYRANK', recent, 0, -(stored_recent + 1))
  redis.call('HINCRBY', totals, 'count', 1)
  redis.call('HINCRBY', totals, 'spend', cents)
  local first = redis.call('HGET', totals, 'first_at')
  if not first or ts < tonumber(first) then redis.call('HSET', totals, 'first_at', ARGV[4]) end
  local last = tonumber(redis.call('HGET', totals, 'last_at') or '0')
  if ts > last then redis.call('HSET', totals, 'last_at', ARGV[4]) end
end

-- The spend of the window ending on this order's day; days long out of any window of `latest`
-- (this order's day; in a rebuild, the customer's newest order's day) are dropped.
local function window_spend(latest)
  local spend = 0
  local oldest = latest - window_days - 31
  local days = redis.call('HGETALL', by_day)
  for i = 1, #days, 2 do
    local d = tonumber(days[i])
    if d > day - window_days and d <= day then
      spend = spend + tonumber(days[i + 1])
    end
    if d <= oldest then
      redis.call('HDEL', by_day, days[i])
    end
  end
  local fields = redis.call('HKEYS', by_category)
  for i = 1, #fields do
    local d = tonumber(string.match(fields[i], '^%a|(%-?%d+)|'))
    if d and d <= oldest then redis.call('HDEL', by_category, fields[i]) end
  end
  return spend
end

local function store_contribution(snapshot, state)
  redis.call('HSET', contribution, 'snapshot', snapshot, 'state', state, 'cents', cents,
    'day', day, 'ts', ARGV[4], 'cats', cats_json, 'skus', skus_json)
  redis.call('EXPIRE', contribution, ttl)
end

if action == 'restore' then
  -- at most once too: a rebuild that lost its lock may still land a chunk beside the next one
  if redis.call('EXISTS', contribution) == 1 then return 0 end
  -- A rebuild reads orders in storage order, not by time: days are dropped relative to the
  -- customer's newest order (first/last, recent orders and SKU times are order-free already),
  -- after any reversal, so the figures end as a replay in time order leaves them.
  add_contribution()
  store_contribution(ARGV[12], 'applied')
  if ARGV[13] == 'reversed' then remove_contribution(cents, day) end
  window_spend(math.floor(tonumber(redis.call('HGET', totals, 'last_at')) / 86400))
  return 1
end

local existing = redis.call('HMGET', contribution, 'snapshot', 'state', 'cents', 'day', 'cats', 'skus')
if existing[1] then
  -- Seen before. An update that changed the amount moves the spend by the difference, once;
  -- one that changed the lines moves the order's categories and SKUs, once.
  local old = tonumber(existing[3])
  if existing[2] == 'applied' and old ~= cents then
    redis.call('HINCRBY', totals, 'spend', cents - old)
    redis.call('HINCRBY', by_day, existing[4], cents - old)
    redis.call('HSET', contribution, 'cents', cents)
  end
  if existing[2] == 'applied' and (existing[5] ~= cats_json or existing[6] ~= skus_json) then
    local stored_ts = redis.call('HGET', contribution, 'ts')
    count_items(existing[5], existing[6], existing[4], stored_ts, -1)
    count_items(cats_json, skus_json, existing[4], stored_ts, 1)
    redis.call('HSET', contribution, 'cats', cats_json, 'skus', skus_json)
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
  spend_365d_cents = window_spend(day),
  recent_order_times = recent_times,
  first_order_at = prior[3] and tonumber(prior[3]) or cjson.null,
})
store_contribution(snapshot, 'applied')
return snapshot
