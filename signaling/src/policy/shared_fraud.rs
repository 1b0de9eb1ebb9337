//! Fraud detection in the shared store (#19): the same measures as [`super::fraud`] (calls per
//! minute and per day to a prefix, concurrent calls, consecutive calls to one number, average
//! answered duration; warning and critical levels, a cool-down) counted over every edge's calls
//! of the account, one script per call. Concurrent calls are leases like channels (a dead
//! edge's stop counting within the TTL); the entry ages out two days after its last call.

use std::time::Instant;

use xtrunk_config::{AccountId, Fraud, Threshold};

use super::counters::Scope;
use super::fraud::{prefix_of, FraudKey, Measure, Verdict};
use super::shared::RedisStore;
use super::shared_scripts::S;

pub(super) const FRAUD: &str = r"
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local function th(i) return tonumber(ARGV[i]) end
local same = 1
local last = redis.call('GET', KEYS[2])
if last then
  local d, n = string.match(last, '^(.*)|(%d+)$')
  if d == ARGV[1] then same = tonumber(n) + 1 end
end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. same, 'EX', 86400)
local bu = tonumber(redis.call('HGET', KEYS[1], 'bu') or '0')
if sec < bu then return {2, redis.call('HGET', KEYS[1], 'bm') or '', ''} end
local mb, db = math.floor(sec / 10), math.floor(sec / 3600)
redis.call('HINCRBY', KEYS[1], 'm' .. mb, 1)
redis.call('HINCRBY', KEYS[1], 'd' .. db, 1)
local all = redis.call('HGETALL', KEYS[1])
local cpm, cpd = 0, 0
for i = 1, #all, 2 do
  local f = all[i]
  local k, n = string.sub(f, 1, 1), tonumber(string.sub(f, 2))
  if k == 'm' and n then
    if n <= mb - 7 then redis.call('HDEL', KEYS[1], f) else cpm = cpm + tonumber(all[i + 1]) end
  elseif k == 'd' and n then
    if n <= db - 25 then redis.call('HDEL', KEYS[1], f) else cpd = cpd + tonumber(all[i + 1]) end
  end
end
redis.call('EXPIRE', KEYS[1], 172800)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
local conc = redis.call('ZCARD', KEYS[3]) + 1
local answered = tonumber(redis.call('HGET', KEYS[1], 'an') or '0')
local talk = tonumber(redis.call('HGET', KEYS[1], 'ts') or '0')
local warn, crit = {}, nil
local function over(name, v, w, c)
  if crit then return end
  if c >= 0 and v >= c then crit = name return end
  if w >= 0 and v >= w then table.insert(warn, name) end
end
over('calls_per_minute', cpm, th(5), th(6))
over('concurrent', conc, th(7), th(8))
over('same_number', same, th(9), th(10))
over('calls_per_day', cpd, th(11), th(12))
if not crit and answered >= 10 then
  local avg = math.floor(talk / answered)
  if th(14) >= 0 and avg < th(14) then crit = 'min_avg_duration'
  elseif th(13) >= 0 and avg < th(13) then table.insert(warn, 'min_avg_duration') end
end
if crit then
  redis.call('HSET', KEYS[1], 'bu', sec + tonumber(ARGV[4]), 'bm', crit)
  return {1, crit, table.concat(warn, ',')}
end
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[3]))
return {0, '', table.concat(warn, ',')}
";

pub(super) const ENDED: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(ARGV[2]) >= 0 then
  redis.call('HINCRBY', KEYS[1], 'an', 1)
  redis.call('HINCRBY', KEYS[1], 'ts', tonumber(ARGV[2]))
end
return 0
";

fn measure(s: &str) -> Option<Measure> {
    [Measure::CallsPerMinute, Measure::Concurrent, Measure::SameNumber, Measure::CallsPerDay, Measure::AvgDuration]
        .into_iter()
        .find(|m| m.as_str() == s)
}

fn level(t: Threshold) -> [String; 2] {
    [t.warning, t.critical].map(|v| v.map_or(-1, i64::from).to_string())
}

/// The three keys of an account's entry for a prefix: the entry hash, the account's last
/// number, the prefix's concurrent-call set.
pub(super) fn keys(prefix: &str, account: &str, p: u64) -> [String; 3] {
    [format!("{prefix}fr:{account}:{p}"), format!("{prefix}frl:{account}"), format!("{prefix}frc:{account}:{p}")]
}

impl RedisStore {
    /// [`super::counters::CounterStore::fraud_call`] for this store.
    pub(super) fn shared_fraud_call(
        &mut self,
        account: AccountId,
        f: &Fraud,
        digits: &str,
        now: Instant,
    ) -> Option<(Verdict, FraudKey)> {
        let p = prefix_of(f, digits);
        let name = self.scope_name(Scope::Account(account));
        let ks = keys(self.key_prefix(), &name, p);
        let seq = self.next_seq();
        let member = format!("{}:f{seq}", self.node_name());
        let mut args =
            vec![digits.to_string(), member.clone(), self.lease_ttl_ms().to_string(), f.cooldown_secs.to_string()];
        for t in [f.calls_per_minute, f.concurrent, f.same_number, f.calls_per_day, f.min_avg_duration_secs] {
            args.extend(level(t));
        }
        let (code, crit, warns): (u8, String, String) = self.run_script(now, S::Fraud, &ks, &args)?;
        let mut v = Verdict {
            warnings: warns.split(',').filter_map(measure).collect(),
            blocked: (code != 0).then(|| measure(&crit)).flatten(),
        };
        if code != 0 && v.blocked.is_none() {
            v.blocked = Some(Measure::CallsPerMinute);
        }
        let key = FraudKey { account, prefix: p, shared: seq };
        if code == 0 {
            self.hold_fraud(seq, [ks[0].clone(), ks[2].clone()], member, now);
        }
        Some((v, key))
    }

    /// [`super::counters::CounterStore::fraud_ended`] for this store.
    pub(super) fn shared_fraud_ended(&mut self, key: FraudKey, talk_secs: Option<u64>) -> bool {
        if key.shared == 0 {
            return false;
        }
        let Some((entry, set, member)) = self.unhold_fraud(key.shared) else { return true };
        let talk = talk_secs.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)).to_string();
        let now = Instant::now();
        let _: Option<u8> = self.run_script(now, S::Ended, &[entry, set], &[member, talk]);
        true
    }
}
