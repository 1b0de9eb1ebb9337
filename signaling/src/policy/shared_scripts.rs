//! The Lua scripts of [`super::shared::RedisStore`]: they run atomically in the server, on its
//! clock (`TIME`), so edges' clocks and interleavings do not matter.

/// The store's scripts, by what they do: the index into `RedisStore`'s loaded scripts, which
/// are built from [`SOURCES`] in this order.
#[derive(Clone, Copy, Debug)]
pub(super) enum S {
    Refresh,
    Take,
    Count,
    Admit,
    Fraud,
    Ended,
}

/// The source of each [`S`], in its order.
pub(super) const SOURCES: [&str; 6] =
    [REFRESH, TAKE, COUNT, ADMIT, super::shared_fraud::FRAUD, super::shared_fraud::ENDED];

pub(super) const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[1 + i])
  redis.call('PEXPIRE', KEYS[i], 2 * ttl)
end
return #KEYS
";

pub(super) const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_wait, max_queued = tonumber(ARGV[3]), tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local start = tat - tolerance
if start < now then start = now end
local wait = start - now
if wait <= 0 or (wait <= max_wait and math.ceil(wait / interval) <= max_queued) then
  redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(tat + interval - now + 1000))
  return {1, tostring(wait)}
end
return {0, tostring(wait - max_wait)}
";

pub(super) const COUNT: &str = r"
local t = redis.call('TIME')
local b = math.floor(tonumber(t[1]) / tonumber(ARGV[1]))
local keep = tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #all, 2 do
  local k = tonumber(all[i])
  if k <= b - keep then redis.call('HDEL', KEYS[1], all[i]) else sum = sum + tonumber(all[i + 1]) end
end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], tostring(b), 1)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]) * (keep + 1))
end
return sum
";

/// A whole admission request in one script: caps, then channels, then buckets (all or
/// nothing: a refusal takes nothing back it did not take), then the call counted in the caps.
pub(super) const ADMIT: &str = r"
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_f = sec * 1000 + tonumber(t[2]) / 1000
local nc, nw, nr, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local member = ARGV[5]
local a = 6
local buckets = {}
for i = 1, nc do
  local bsecs, keep, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local b = math.floor(sec / bsecs)
  buckets[i] = {b, bsecs, keep}
  local all = redis.call('HGETALL', KEYS[i])
  local sum = 0
  for j = 1, #all, 2 do
    if tonumber(all[j]) <= b - keep then redis.call('HDEL', KEYS[i], all[j]) else sum = sum + tonumber(all[j + 1]) end
  end
  if sum >= cap then return {1, i, '0'} end
end
local wk = nc + 1
for i = 1, nw do
  local here, other = KEYS[wk + 2 * (i - 1)], KEYS[wk + 2 * (i - 1) + 1]
  redis.call('ZREMRANGEBYSCORE', here, '-inf', now_ms)
  redis.call('ZREMRANGEBYSCORE', other, '-inf', now_ms)
  local h, o = redis.call('ZCARD', here), redis.call('ZCARD', other)
  local total, indir = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  if (total >= 0 and h + o >= total) or (indir >= 0 and h >= indir) then
    for j = 1, i - 1 do redis.call('ZREM', KEYS[wk + 2 * (j - 1)], member .. ':' .. j) end
    return {2, i, '0'}
  end
  redis.call('ZADD', here, now_ms + ttl, member .. ':' .. i)
  redis.call('PEXPIRE', here, 2 * ttl)
end
local rk = wk + 2 * nw
local tats, maxwait = {}, 0
for i = 1, nr do
  local interval, tolerance = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local max_wait, max_queued = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local tat = tonumber(redis.call('GET', KEYS[rk + i - 1]) or now_f)
  if tat < now_f then tat = now_f end
  local start = tat - tolerance
  if start < now_f then start = now_f end
  local wait = start - now_f
  if wait > 0 and (wait > max_wait or math.ceil(wait / interval) > max_queued) then
    for j = 1, nw do redis.call('ZREM', KEYS[wk + 2 * (j - 1)], member .. ':' .. j) end
    return {3, i, tostring(wait - max_wait)}
  end
  tats[i] = tat + interval
  if wait > maxwait then maxwait = wait end
end
for i = 1, nr do
  redis.call('SET', KEYS[rk + i - 1], tostring(tats[i]), 'PX', math.ceil(tats[i] - now_f + 1000))
end
for i = 1, nc do
  redis.call('HINCRBY', KEYS[i], tostring(buckets[i][1]), 1)
  redis.call('EXPIRE', KEYS[i], buckets[i][2] * (buckets[i][3] + 1))
end
return {0, 0, tostring(maxwait)}
";
