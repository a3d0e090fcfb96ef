//! Sign-in throttling by client address, beside the per-account lock in `staff`.
//!
//! A lock per account alone lets anyone who knows a member of staff's email lock them out by
//! guessing. So the account's lock holds only where the client address agrees — an address
//! that has itself failed on that account recently — and every address has a budget of its own
//! across all accounts (password spraying), with back-off once it is spent. Only failed
//! sign-ins count; an attempt refused while throttled is not checked and does not count.
//!
//! The counters live in memory: exact on the one embedded process, per instance on Lambda
//! (each instance then throttles on its own — weaker, documented in `docs/operations.md`).

use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed sign-ins one client address may make (on any accounts) before it is throttled;
/// each further failure doubles the wait, up to `MAX_BLOCK`.
pub const ADDRESS_FREE_ATTEMPTS: u32 = 20;
/// Longest wait for a throttled address.
pub const MAX_BLOCK: SignedDuration = SignedDuration::from_secs(60 * 60);
/// A counter whose last failure is older than this is forgotten.
pub const MEMORY: SignedDuration = SignedDuration::from_secs(60 * 60);
/// Counters kept at most (addresses plus address/account pairs); past it the stale ones are
/// dropped, and if none is stale new pairs are not tracked (addresses still are).
const MAX_ENTRIES: usize = 100_000;

/// The counting key of `ip`: IPv4 as is, IPv6 by its /64 (the block one subscriber usually
/// gets, so rotating through their own addresses does not multiply the budget), IPv4-mapped
/// IPv6 as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    last: Timestamp,
}

#[derive(Default)]
struct Tables {
    by_address: HashMap<IpAddr, Counter>,
    /// (address, lower-cased email): the address has failed on that account.
    by_pair: HashMap<(IpAddr, String), Counter>,
}

/// The wait after `failures` failed sign-ins from one address, if it is throttled.
pub fn address_block(failures: u32) -> Option<SignedDuration> {
    if failures < ADDRESS_FREE_ATTEMPTS {
        return None;
    }
    let minutes = 1i64 << (failures - ADDRESS_FREE_ATTEMPTS).min(6);
    Some(SignedDuration::from_secs(60 * minutes).min(MAX_BLOCK))
}

#[derive(Default)]
pub struct SignInThrottle {
    tables: Mutex<Tables>,
}

fn fresh(c: &Counter, now: Timestamp) -> bool {
    now.duration_since(c.last) <= MEMORY
}

impl SignInThrottle {
    /// Until when `ip` is throttled, if it is.
    pub fn address_blocked(&self, ip: IpAddr, now: Timestamp) -> Option<Timestamp> {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let c = t
            .by_address
            .get(&client_key(ip))
            .filter(|c| fresh(c, now))?;
        let until = c.last.saturating_add(address_block(c.failures)?).ok()?;
        (until > now).then_some(until)
    }

    /// Whether `ip` has failed on the account `email` recently: then the account's lock holds
    /// for it.
    pub fn agrees_with_lock(&self, ip: IpAddr, email: &str, now: Timestamp) -> bool {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.by_pair
            .get(&(client_key(ip), email.to_string()))
            .is_some_and(|c| fresh(c, now))
    }

    /// Count a failed sign-in from `ip` (on `email`, when the account exists); returns until
    /// when the address is now throttled, if it is.
    pub fn record_failure(
        &self,
        ip: IpAddr,
        email: Option<&str>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let key = client_key(ip);
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if t.by_address.len() + t.by_pair.len() >= MAX_ENTRIES {
            t.by_address.retain(|_, c| fresh(c, now));
            t.by_pair.retain(|_, c| fresh(c, now));
        }
        let bump = |c: &mut Counter| {
            c.failures = if fresh(c, now) { c.failures + 1 } else { 1 };
            c.last = now;
        };
        let mut failures = 0;
        let room = t.by_address.len() + t.by_pair.len() < MAX_ENTRIES;
        if room || t.by_address.contains_key(&key) {
            let c = t.by_address.entry(key).or_insert(Counter {
                failures: 0,
                last: now,
            });
            bump(c);
            failures = c.failures;
        }
        if let Some(email) = email {
            let room = t.by_address.len() + t.by_pair.len() < MAX_ENTRIES;
            let pair = (key, email.to_string());
            if room || t.by_pair.contains_key(&pair) {
                bump(t.by_pair.entry(pair).or_insert(Counter {
                    failures: 0,
                    last: now,
                }));
            }
        }
        now.saturating_add(address_block(failures)?).ok()
    }

    /// A successful sign-in from `ip` to `email`: the pair starts afresh. The address's own
    /// count stays — signing in to an account of one's own must not buy more guesses.
    pub fn record_success(&self, ip: IpAddr, email: &str) {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.by_pair.remove(&(client_key(ip), email.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn an_address_is_throttled_after_its_budget_with_back_off() {
        let t = SignInThrottle::default();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..ADDRESS_FREE_ATTEMPTS - 1 {
            assert_eq!(t.record_failure(ip, None, at(0)), None);
        }
        assert_eq!(t.address_blocked(ip, at(0)), None);
        assert_eq!(t.record_failure(ip, None, at(0)), Some(at(60)));
        assert_eq!(t.address_blocked(ip, at(59)), Some(at(60)));
        assert_eq!(t.address_blocked(ip, at(60)), None);
        assert_eq!(t.record_failure(ip, None, at(61)), Some(at(61 + 120)));
        // Another address is not affected.
        assert_eq!(
            t.address_blocked("203.0.113.10".parse().unwrap(), at(62)),
            None
        );
        // Forgotten after an hour without failures.
        assert_eq!(t.record_failure(ip, None, at(61 + 3601)), None);
        assert_eq!(address_block(500), Some(MAX_BLOCK));
    }

    #[test]
    fn ipv6_counts_per_64_and_pairs_reset_on_success() {
        let t = SignInThrottle::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..ADDRESS_FREE_ATTEMPTS {
            t.record_failure(a, Some("x@example.com"), at(0));
        }
        assert!(t.address_blocked(b, at(1)).is_some(), "same /64");
        assert!(t.agrees_with_lock(b, "x@example.com", at(1)));
        assert!(!t.agrees_with_lock(b, "y@example.com", at(1)));
        t.record_success(a, "x@example.com");
        assert!(!t.agrees_with_lock(b, "x@example.com", at(1)));
        assert!(
            t.address_blocked(b, at(1)).is_some(),
            "a success does not reset the address"
        );
    }
}
