//! The numeric configuration of one circuit.
//!
//! Everything here is part of a circuit's identity: two breakers with the same name must agree
//! on every field, or the second one is refused (see `registry.rs`). Functions (fallback,
//! isFailure, listeners) are not here: they belong to the JavaScript instance.

/// How the window of recent calls is kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowKind {
    /// The last `size` recorded calls.
    Count { size: u32 },
    /// The calls of the last `duration_ms`, in `buckets` buckets that age by elapsed time.
    Time { duration_ms: u64, buckets: u32 },
}

impl WindowKind {
    /// As a user wrote it in JavaScript, for error messages.
    pub fn to_js(&self) -> String {
        match self {
            WindowKind::Count { size } => format!("{{ type: 'count', size: {size} }}"),
            WindowKind::Time { duration_ms, buckets } => {
                format!("{{ type: 'time', durationMs: {duration_ms}, buckets: {buckets} }}")
            }
        }
    }
}

/// `resetBackoff`: how the open period grows after each failed probe (resilience4j's
/// wait-interval function, cockatiel's `halfOpenAfter` backoff).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Each re-open after a failed probe multiplies the previous period by this (>= 1).
    pub multiplier: f64,
    /// No period is longer than this (ms); at least `reset_timeout_ms`.
    pub max_ms: u64,
    /// A fraction in [0, 1]: each period is spread randomly by up to this much of itself.
    pub jitter: f64,
}

impl Backoff {
    pub fn to_js(&self) -> String {
        format!("{{ multiplier: {}, maxMs: {}, jitter: {} }}", self.multiplier, self.max_ms, self.jitter)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Opens when `failures / calls >= failure_threshold` (a fraction in (0, 1]).
    pub failure_threshold: f64,
    /// ... and the window holds at least this many calls (capped at a count window's size).
    pub minimum_requests: u32,
    /// Opens after this many consecutive failures; 0 = off.
    pub consecutive_failures: u32,
    /// A call that took longer than this (ms) is slow; 0 = slow calls are not tracked.
    pub slow_call_duration_ms: f64,
    /// Opens when `slow / calls >= slow_call_rate_threshold` (fraction in (0, 1]); 0 = off.
    pub slow_call_rate_threshold: f64,
    /// Per-call timeout in ms; 0 = none. Enforced by the JS layer, kept here for stats.
    pub timeout_ms: f64,
    /// How long (ms) a tripped circuit stays OPEN before it lets a probe through.
    pub reset_timeout_ms: u64,
    /// At most this many probes in flight while HALF_OPEN.
    pub half_open_max_requests: u32,
    /// This many consecutive probe successes close the circuit.
    pub success_threshold: u32,
    /// Re-open when no probe settled this long (ms) after entering HALF_OPEN; 0 = off.
    pub half_open_timeout_ms: u64,
    pub window: WindowKind,
    /// `resetBackoff`; None = every open period is `reset_timeout_ms`.
    pub reset_backoff: Option<Backoff>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_threshold: 0.5,
            minimum_requests: 10,
            consecutive_failures: 0,
            slow_call_duration_ms: 0.0,
            slow_call_rate_threshold: 0.0,
            timeout_ms: 30_000.0,
            reset_timeout_ms: 60_000,
            half_open_max_requests: 1,
            success_threshold: 1,
            half_open_timeout_ms: 0,
            window: WindowKind::Time { duration_ms: 60_000, buckets: 10 },
            reset_backoff: None,
        }
    }
}

impl Config {
    /// Checks ranges. The JS layer gives users friendlier errors first; this is the backstop
    /// for anything that reaches the core (snapshots, other callers).
    pub fn validate(&self) -> Result<(), String> {
        let t = self.failure_threshold;
        if !(t > 0.0 && t <= 1.0) {
            return Err(format!("failureThreshold must be a fraction in (0, 1], got {t}"));
        }
        if self.minimum_requests == 0 {
            return Err("minimumRequests must be at least 1".into());
        }
        let s = self.slow_call_rate_threshold;
        if !(s == 0.0 || (s > 0.0 && s <= 1.0)) {
            return Err(format!("slowCallRateThreshold must be a fraction in (0, 1], got {s}"));
        }
        if self.half_open_max_requests == 0 {
            return Err("halfOpenMaxRequests must be at least 1".into());
        }
        if self.success_threshold == 0 {
            return Err("successThreshold must be at least 1".into());
        }
        if let Some(b) = self.reset_backoff {
            if !(b.multiplier >= 1.0 && b.multiplier <= 1000.0) {
                return Err(format!("resetBackoff.multiplier must be in [1, 1000], got {}", b.multiplier));
            }
            if !(0.0..=1.0).contains(&b.jitter) {
                return Err(format!("resetBackoff.jitter must be a fraction in [0, 1], got {}", b.jitter));
            }
            if b.max_ms < self.reset_timeout_ms {
                return Err(format!("resetBackoff.maxMs must be at least resetTimeout ({}), got {}", self.reset_timeout_ms, b.max_ms));
            }
        }
        match self.window {
            WindowKind::Count { size } if size == 0 || size > 1_000_000 => {
                Err(format!("window.size must be in 1..=1000000, got {size}"))
            }
            WindowKind::Time { duration_ms, buckets } if buckets == 0 || buckets > 1000 => {
                let _ = duration_ms;
                Err(format!("window.buckets must be in 1..=1000, got {buckets}"))
            }
            WindowKind::Time { duration_ms, buckets } if duration_ms < buckets as u64 => Err(format!(
                "window.durationMs must be at least 1 ms per bucket, got {duration_ms} for {buckets} buckets"
            )),
            _ => Ok(()),
        }
    }

    /// The effective minimum: with a count window, `min(minimumRequests, size)` (as
    /// resilience4j does), so that no configuration can never trip.
    pub fn effective_minimum(&self) -> u32 {
        match self.window {
            WindowKind::Count { size } => self.minimum_requests.min(size),
            WindowKind::Time { .. } => self.minimum_requests,
        }
    }

    /// The first field that differs from `other`, with both values, for the registry's
    /// "different options for an existing name" error.
    pub fn first_difference(&self, other: &Config) -> Option<(&'static str, String, String)> {
        macro_rules! cmp {
            ($field:ident, $name:expr) => {
                if self.$field != other.$field {
                    return Some(($name, format!("{}", self.$field), format!("{}", other.$field)));
                }
            };
        }
        cmp!(failure_threshold, "failureThreshold");
        cmp!(minimum_requests, "minimumRequests");
        cmp!(consecutive_failures, "consecutiveFailures");
        cmp!(slow_call_duration_ms, "slowCallDurationMs");
        cmp!(slow_call_rate_threshold, "slowCallRateThreshold");
        cmp!(timeout_ms, "timeout");
        cmp!(reset_timeout_ms, "resetTimeout");
        cmp!(half_open_max_requests, "halfOpenMaxRequests");
        cmp!(success_threshold, "successThreshold");
        cmp!(half_open_timeout_ms, "halfOpenTimeout");
        if self.window != other.window {
            return Some(("window", self.window.to_js(), other.window.to_js()));
        }
        if self.reset_backoff != other.reset_backoff {
            let js = |b: &Option<Backoff>| b.map(|b| b.to_js()).unwrap_or_else(|| "undefined".into());
            return Some(("resetBackoff", js(&self.reset_backoff), js(&other.reset_backoff)));
        }
        None
    }
}
