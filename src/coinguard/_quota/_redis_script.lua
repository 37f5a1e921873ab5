-- coinguard quota: the exact window algorithm of _log.py, as one atomic Redis script.
-- KEYS[1] meta hash; window i: KEYS[3i-1] zset (rolling) or hash (calendar), KEYS[3i] sum,
-- KEYS[3i+1] running sums (rolling).
-- ARGV: op, now ('' = Redis TIME), n, then per window kind limit length margin name, then op args.
-- Ops: reserve, settle (re-check a reservation ahead), release (a call never sent), correct
-- (recount a late answer), sync, status.

local function fmt(x) return string.format('%.17g', x) end
local floor = math.floor

local op = ARGV[1]
local now
if ARGV[2] == '' then
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
else
  now = tonumber(ARGV[2])
end
local n = tonumber(ARGV[3])
local W = {}
for i = 1, n do
  local o = 4 + (i - 1) * 5
  W[i] = {kind = ARGV[o], limit = tonumber(ARGV[o + 1]), len = tonumber(ARGV[o + 2]),
          margin = tonumber(ARGV[o + 3]), name = ARGV[o + 4],
          key = KEYS[3 * i - 1], sum = KEYS[3 * i], cum = KEYS[3 * i + 1], tot = 0}
end
local A = 4 + n * 5
local META = KEYS[1]

-- The key's timeline (KeyState.clock): the clock plus drift, the steps back it has taken.
-- A reading more than tol behind the latest seen is a step, and drift absorbs it.
local tol = 1.0
for i = 1, n do
  if W[i].kind == 'r' then tol = math.min(tol, 0.5 * W[i].len) end
end
local clk = redis.call('HMGET', META, 'drift', 'seen')
local drift, seen = tonumber(clk[1] or '0'), tonumber(clk[2] or '0')
local wall = now
now = now + drift
if now < seen and seen - now > tol then
  drift = drift + (seen - now)
  now = seen
end
if now > seen then seen = now end
if redis.call('EXISTS', META) == 1 then
  redis.call('HSET', META, 'drift', fmt(drift), 'seen', fmt(seen))
elseif op ~= 'status' then
  redis.call('HSET', META, 'drift', fmt(drift), 'seen', fmt(seen))
  redis.call('PEXPIRE', META, 1000)  -- whatever this op commits extends it
end

local function after(base, len)
  local x = base + len
  while x - len < base do x = x + math.abs(x) * 2.220446049250313e-16 end
  return x
end

-- UTC calendar months (H. Hinnant's civil-from-days and days-from-civil).
local function month_id(t)
  local z = floor(t / 86400) + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y * 12 + m - 1
end

local function month_start(id)
  local y = floor(id / 12)
  local m = id - y * 12 + 1
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400
end

-- calendar slots keep to the wall clock: times on the key's timeline are drift ahead of it
local function wid(w, t)
  t = t - drift
  if w.kind == 'm' then return month_id(t) end
  return floor(t / w.len)
end

local function wstart(w, id)
  if w.kind == 'm' then return month_start(id) + drift end
  return id * w.len + drift
end

local function cost_of(member) return tonumber(string.match(member, ':(%d+)$')) end

-- rolling windows: a sorted set of 'seq:cost' scored by admission time, the sum of the live
-- entries, and a second sorted set scoring each entry by the running sum of cost up to it in
-- time order (_table.py's cum column): the cost between two entries is a difference of two
-- scores, so every question below is a few O(log n) lookups, whatever the live count. An
-- entry inserted before others shifts the running sums of those after it: calls reserved
-- ahead, a few.
local function cum_of(w, member) return tonumber(redis.call('ZSCORE', w.cum, member)) end

-- keys written before the running sums existed: number their entries once
local function r_number(w)
  local acc = 0
  for _, m in ipairs(redis.call('ZRANGE', w.key, 0, -1)) do
    acc = acc + cost_of(m)
    redis.call('ZADD', w.cum, fmt(acc), m)
  end
end

local function r_load(w)
  if redis.call('EXISTS', w.key) == 0 then w.tot = 0; return end
  if redis.call('EXISTS', w.cum) == 0 then r_number(w) end
  w.tot = tonumber(redis.call('GET', w.sum) or '0')
  local old = redis.call('ZRANGEBYSCORE', w.key, '-inf', now - w.len + 1e-6, 'WITHSCORES')
  local k, drop, gone = 0, 0, nil
  for j = 1, #old, 2 do
    if tonumber(old[j + 1]) + w.len <= now then
      k = k + 1
      drop = drop + cost_of(old[j])
      gone = old[j]
    else
      break
    end
  end
  if k > 0 then
    redis.call('ZREMRANGEBYSCORE', w.cum, '-inf', fmt(cum_of(w, gone)))
    redis.call('ZREMRANGEBYRANK', w.key, 0, k - 1)
    redis.call('DECRBY', w.sum, drop)
    w.tot = w.tot - drop
  end
end

-- the running sum before the oldest live entry (entries are pruned at load)
local function r_base(w)
  local first = redis.call('ZRANGE', w.key, 0, 0)
  if #first == 0 then return 0 end
  return cum_of(w, first[1]) - cost_of(first[1])
end

-- the time of the oldest entry whose running sum reaches c
local function r_time_at_cum(w, c)
  local row = redis.call('ZRANGEBYSCORE', w.cum, fmt(c), '+inf', 'LIMIT', 0, 1)
  if #row == 0 then return nil end
  return tonumber(redis.call('ZSCORE', w.key, row[1]))
end

local function r_earliest(w, t, cost)
  local excess = w.tot + cost - w.limit
  if excess <= 0 then return t end
  local y = r_time_at_cum(w, r_base(w) + excess)
  if y == nil then return math.huge end  -- more than the limit on its own
  local x = after(y, w.len)
  if x > t then return x end
  return t
end

-- shift the running sums of the entries after rank r by d
local function r_shift(w, r, d)
  for _, m in ipairs(redis.call('ZRANGE', w.key, r + 1, -1)) do
    redis.call('ZINCRBY', w.cum, fmt(d), m)
  end
end

local function r_add(w, t, cost, tag)
  local seq = redis.call('HINCRBY', META, 'seq', 1)
  local member = tag .. seq .. ':' .. cost
  redis.call('ZADD', w.key, fmt(t), member)
  local r = redis.call('ZRANK', w.key, member)
  local before = 0
  if r > 0 then
    before = cum_of(w, redis.call('ZRANGE', w.key, r - 1, r - 1)[1])
  else
    local nxt = redis.call('ZRANGE', w.key, 1, 1)
    if #nxt == 1 then before = cum_of(w, nxt[1]) - cost_of(nxt[1]) end
  end
  r_shift(w, r, cost)
  redis.call('ZADD', w.cum, fmt(before + cost), member)
  redis.call('INCRBY', w.sum, cost)
  w.tot = w.tot + cost
end

-- the newest entry admitted at or before t: member and running sum, or nil
local function r_last_upto(w, t)
  local row = redis.call('ZREVRANGEBYSCORE', w.key, fmt(t), '-inf', 'LIMIT', 0, 1)
  if #row == 0 then return nil end
  return cum_of(w, row[1])
end

local function r_used_until(w, t)
  local c = r_last_upto(w, t)
  if c == nil then return 0 end
  return c - r_base(w)
end

-- calendar windows: a hash slot id -> cost
local function c_count(w, id) return tonumber(redis.call('HGET', w.key, fmt(id)) or '0') end

local function c_prune(w)
  if redis.call('HLEN', w.key) > 2 then
    local current = wid(w, now)
    for _, f in ipairs(redis.call('HKEYS', w.key)) do
      if tonumber(f) < current then redis.call('HDEL', w.key, f) end
    end
  end
end

local function c_earliest(w, t, cost)
  while true do
    local a, b = wid(w, t), wid(w, t + w.margin)
    if c_count(w, a) + cost > w.limit then
      t = wstart(w, a + 1)
    elseif b ~= a and c_count(w, b) + cost > w.limit then
      t = wstart(w, b + 1)
    else
      return t
    end
  end
end

local function c_commit(w, t, cost)
  local a, b = wid(w, t), wid(w, t + w.margin)
  redis.call('HINCRBY', w.key, fmt(a), cost)
  if b ~= a then redis.call('HINCRBY', w.key, fmt(b), cost) end
end

-- keys live as long as anything in them still counts, so nothing leaks
local function expire(w, t)
  local until_t
  if w.kind == 'r' then
    until_t = t + w.len
    local last = redis.call('ZRANGE', w.key, -1, -1, 'WITHSCORES')
    if #last == 2 then until_t = math.max(until_t, tonumber(last[2]) + w.len) end
  else
    until_t = wstart(w, wid(w, t + w.margin) + 1)
  end
  local ms = math.ceil((until_t - now) * 1000) + 1000
  -- only ever extend: a slot reserved ahead must outlive the current one
  if redis.call('PTTL', w.key) < ms then
    redis.call('PEXPIRE', w.key, ms)
    if w.kind == 'r' then
      redis.call('PEXPIRE', w.sum, ms)
      redis.call('PEXPIRE', w.cum, ms)
    end
  end
  return ms
end

local function expire_meta(ms)
  if redis.call('PTTL', META) < ms then redis.call('PEXPIRE', META, ms) end
end

local function load_all()
  local calendar = false
  for i = 1, n do
    if W[i].kind == 'r' then r_load(W[i]) else calendar = true; c_prune(W[i]) end
  end
  return calendar
end

-- commit cost at t in every window; returns the TTL (ms) the meta hash needs
local function commit_all(t, cost, tag)
  local ms = 1000
  for i = 1, n do
    local w = W[i]
    if w.kind == 'r' then r_add(w, t, cost, tag) else c_commit(w, t, cost) end
    ms = math.max(ms, expire(w, t))
  end
  return ms
end

local function reserve(cost, max_wait)
  local m = redis.call('HMGET', META, 'last', 'last_why', 'blocked', 'blocked_why')
  local t, why = now, ''
  if tonumber(m[1] or '0') > t then t, why = tonumber(m[1]), m[2] or '' end
  if tonumber(m[3] or '0') > t then t, why = tonumber(m[3]), m[4] or '' end
  if cost > 0 then
    local calendar = load_all()
    while true do
      local moved = false
      for i = 1, n do
        local w, x = W[i], nil
        if w.kind == 'r' then x = r_earliest(w, t, cost) else x = c_earliest(w, t, cost) end
        if x > t then t, why, moved = x, w.name, true end
      end
      if not moved or not calendar then break end
    end
  end
  if t - now > max_wait then return {0, fmt(t), fmt(now), why ~= '' and why or W[1].name} end
  if cost > 0 then
    local ms = commit_all(t, cost, '')
    if why == '' then why = m[2] or '' end
    redis.call('HSET', META, 'last', fmt(t), 'last_why', why)
    expire_meta(ms)
  end
  return {1, fmt(t), fmt(now), why}
end

-- take out one entry admitted at t for cost (entries of equal time and cost are alike)
local function r_remove(w, t, cost)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', w.key, fmt(t), fmt(t))) do
    if cost_of(member) == cost then
      r_shift(w, redis.call('ZRANK', w.key, member), -cost)
      redis.call('ZREM', w.key, member)
      redis.call('ZREM', w.cum, member)
      redis.call('DECRBY', w.sum, cost)
      w.tot = w.tot - cost
      return true
    end
  end
  return false
end

-- the running sum before the oldest entry still counting at instant x, or nil if none does
local function r_before_counting(w, x)
  local start = 0
  while true do
    local rows = redis.call('ZRANGEBYSCORE', w.key, '(' .. fmt(x - w.len - 1e-6), '+inf',
                            'WITHSCORES', 'LIMIT', start, 16)
    if #rows == 0 then return nil end
    for j = 1, #rows, 2 do
      if tonumber(rows[j + 1]) + w.len > x then return cum_of(w, rows[j]) - cost_of(rows[j]) end
    end
    start = start + 16
  end
end

-- cost of the entries that count at instant x (admitted at or before x, within a window)
local function r_count_at(w, x)
  local before = r_before_counting(w, x)
  if before == nil then return 0 end
  local c = r_last_upto(w, x)
  if c == nil or c <= before then return 0 end
  return c - before
end

-- the earliest time >= y at which cost more fits among the entries counting then (_log.py)
local function r_earliest_at(w, y, cost)
  while true do
    local excess = r_count_at(w, y) + cost - w.limit
    if excess <= 0 then return y end
    local before = r_before_counting(w, y)
    local z = before and r_time_at_cum(w, before + excess)
    if z == nil then return math.huge end  -- more than the limit on its own
    y = after(z, w.len)
  end
end

if op == 'reserve' then
  return reserve(tonumber(ARGV[A]), tonumber(ARGV[A + 1]))
end

if op == 'settle' then
  local at, cost, max_wait = tonumber(ARGV[A]), tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
  local x = math.max(at, now)
  load_all()
  -- it may go as reserved if it leaves within the margin, outside the penalty box, and fits
  local fits = x - at <= W[1].margin
    and tonumber(redis.call('HGET', META, 'blocked') or '0') <= x
  if fits then
    for i = 1, n do
      local w = W[i]
      if w.kind == 'r' then
        if r_count_at(w, x) > w.limit then fits = false end
      else
        local a, b = wid(w, at), wid(w, at + w.margin)
        if c_count(w, a) > w.limit or (b ~= a and c_count(w, b) > w.limit) then fits = false end
      end
    end
  end
  if fits then return {1, fmt(at), fmt(now), ''} end
  for i = 1, n do
    local w = W[i]
    if w.kind == 'r' then
      r_remove(w, at, cost)
    else
      local a, b = wid(w, at), wid(w, at + w.margin)
      -- a slot already over is not brought back
      if redis.call('HEXISTS', w.key, fmt(a)) == 1 then redis.call('HINCRBY', w.key, fmt(a), -cost) end
      if b ~= a and redis.call('HEXISTS', w.key, fmt(b)) == 1 then
        redis.call('HINCRBY', w.key, fmt(b), -cost)
      end
    end
  end
  -- re-admit at the earliest time that fits among the calls counting then, not behind every
  -- reservation: the calls after it re-check themselves as they leave
  -- never before the latest reading any caller took: calls admitted up to it may have left
  local m = redis.call('HMGET', META, 'last', 'last_why', 'blocked', 'blocked_why')
  local t, why = math.max(x, seen), ''
  if tonumber(m[3] or '0') > t then t, why = tonumber(m[3]), m[4] or '' end
  local moved = true
  while moved do
    moved = false
    for i = 1, n do
      local w, y = W[i], nil
      if w.kind == 'r' then y = r_earliest_at(w, t, cost) else y = c_earliest(w, t, cost) end
      if y > t then t, why, moved = y, w.name, true end
    end
  end
  if t - now > max_wait then return {0, fmt(t), fmt(now), why ~= '' and why or W[1].name} end
  local ms = commit_all(t, cost, 's')
  if t > tonumber(m[1] or '0') then
    if why == '' then why = m[2] or '' end
    redis.call('HSET', META, 'last', fmt(t), 'last_why', why)
  end
  expire_meta(ms)
  return {1, fmt(t), fmt(now), why}
end

if op == 'release' then
  -- give back a reservation whose call was never sent; the FIFO tail goes back to the latest
  -- admission still held (KeyState.release)
  local at, cost = tonumber(ARGV[A]), tonumber(ARGV[A + 1])
  load_all()
  local found = false
  for i = 1, n do
    local w = W[i]
    if w.kind == 'r' then
      if r_remove(w, at, cost) then found = true end
    else
      local a, b = wid(w, at), wid(w, at + w.margin)
      if c_count(w, a) >= cost then redis.call('HINCRBY', w.key, fmt(a), -cost); found = true end
      if b ~= a and c_count(w, b) >= cost then
        redis.call('HINCRBY', w.key, fmt(b), -cost)
        found = true
      end
    end
  end
  if found and tonumber(redis.call('HGET', META, 'last') or '0') <= at then
    local last = 0
    for i = 1, n do
      local w = W[i]
      if w.kind == 'r' then
        local top = redis.call('ZRANGE', w.key, -1, -1, 'WITHSCORES')
        if #top == 2 and tonumber(top[2]) > last then last = tonumber(top[2]) end
      end
    end
    redis.call('HSET', META, 'last', fmt(last))
  end
  return {fmt(now)}
end

if op == 'correct' then
  local at, cost, answered = tonumber(ARGV[A]), tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
  local lead = tonumber(ARGV[A + 3] or '0') or 0
  load_all()
  local ms = 1000
  for i = 1, n do
    local w = W[i]
    if w.kind == 'r' then
      local late = answered - w.margin - lead
      -- an entry that is neither there nor expired was moved already: once only
      if late > at and (r_remove(w, at, cost) or after(at, w.len) <= now) then
        r_add(w, late, cost, 'l')
        ms = math.max(ms, expire(w, late))
        -- later admissions must not go before it
        if late > tonumber(redis.call('HGET', META, 'last') or '0') then
          redis.call('HSET', META, 'last', fmt(late))
        end
      end
    else
      local a, b, c = wid(w, at), wid(w, at + w.margin), wid(w, answered)
      if c ~= a and c ~= b then
        redis.call('HINCRBY', w.key, fmt(c), cost)
        ms = math.max(ms, expire(w, answered))
      end
    end
  end
  expire_meta(ms)
  return {fmt(now)}
end

if op == 'sync' then
  local penalty, penalty_why = ARGV[A], ARGV[A + 1]
  local debit_at, nt = tonumber(ARGV[A + 2]), tonumber(ARGV[A + 3])
  load_all()
  local ms = 1000
  for k = 0, nt - 1 do
    local w = W[tonumber(ARGV[A + 4 + 3 * k]) + 1]
    local used, reset = tonumber(ARGV[A + 5 + 3 * k]), ARGV[A + 6 + 3 * k]
    if w.kind == 'r' then
      -- lower what is left now; the cost learned lives a full window (see _log.py)
      local deficit = used - r_used_until(w, now)
      if deficit > 0 and (reset == '' or tonumber(reset) > 0) then
        r_add(w, now, deficit, 'f')
        ms = math.max(ms, expire(w, now))
      end
    else
      local id = wid(w, now)
      if used > c_count(w, id) then
        redis.call('HSET', w.key, fmt(id), used)
        ms = math.max(ms, expire(w, now))
      end
    end
  end
  -- debits: what the answer billed beyond the reservation (added now) or short of it (a
  -- refund from every slot the call was counted in, never below 0; calendar windows only)
  local D = A + 4 + 3 * nt
  for k = 0, tonumber(ARGV[D]) - 1 do
    local w = W[tonumber(ARGV[D + 1 + 2 * k]) + 1]
    local debit = tonumber(ARGV[D + 2 + 2 * k])
    if debit > 0 then
      if w.kind == 'r' then r_add(w, now, debit, 'd')
      else redis.call('HINCRBY', w.key, fmt(wid(w, now)), debit) end
      ms = math.max(ms, expire(w, now))
    elseif debit < 0 and w.kind ~= 'r' then
      local a, b = wid(w, debit_at), wid(w, debit_at + w.margin)
      for _, id in ipairs(a == b and {a} or {a, b}) do
        local back = math.min(-debit, c_count(w, id))
        if back > 0 then redis.call('HINCRBY', w.key, fmt(id), -back) end
      end
    end
  end
  if penalty ~= '' then
    local until_t = now + tonumber(penalty)
    if until_t > tonumber(redis.call('HGET', META, 'blocked') or '0') then
      redis.call('HSET', META, 'blocked', fmt(until_t), 'blocked_why', penalty_why)
      ms = math.max(ms, math.ceil(tonumber(penalty) * 1000) + 1000)
    end
  end
  expire_meta(ms)
  return {fmt(now)}
end

load_all()
-- status, on the wall clock
local out = {fmt(wall), fmt(tonumber(redis.call('HGET', META, 'blocked') or '0') - drift),
             redis.call('HGET', META, 'blocked_why') or ''}
for i = 1, n do
  local w = W[i]
  if w.kind == 'r' then
    local first = redis.call('ZRANGE', w.key, 0, 0, 'WITHSCORES')
    out[#out + 1] = tostring(w.tot)
    out[#out + 1] = #first == 2 and fmt(after(tonumber(first[2]), w.len) - drift) or ''
  else
    local id = wid(w, now)
    out[#out + 1] = tostring(c_count(w, id))
    out[#out + 1] = fmt(wstart(w, id + 1) - drift)
  end
end
return out
