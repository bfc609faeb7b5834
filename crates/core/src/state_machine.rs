//! One circuit's state machine: CLOSED, OPEN and HALF_OPEN, the tripping rules, half-open
//! probe accounting, and the lifetime counters — the semantics of resilience4j's
//! `CircuitBreakerStateMachine`, written to be read in one sitting.
//!
//! Time is a parameter (`now_ms`, ms on the monotonic circuit clock of ticker.rs, never epoch
//! time: the N-API layer converts moments to epoch ms) of every method: there are no timers.
//! OPEN becomes HALF_OPEN lazily, on the first call or state read after `resetTimeout`, so a
//! process with circuits exits by itself and a Lambda environment thawed after an hour wakes
//! up in the right state. Tests drive the clock by hand.
//!
//! The machine is not thread-safe; `registry.rs` puts each one behind a mutex that only the
//! slow paths take (see the crate docs for the fast path).

use crate::config::Config;
use crate::histogram::{Histogram, LatencySummary};
use crate::window::{Totals, Window};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }
}

/// Why a transition happened; `stateChange` events carry its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    FailureRate = 0,
    ConsecutiveFailures = 1,
    SlowCallRate = 2,
    Predicate = 3,
    ResetTimeoutElapsed = 4,
    ProbeSucceeded = 5,
    ProbeFailed = 6,
    HalfOpenTimeout = 7,
    ForcedOpen = 8,
    ManualOpen = 9,
    ManualClose = 10,
    ManualHalfOpen = 11,
    Reset = 12,
    Restored = 13,
    /// Another instance's decision, read from a shared store.
    Store = 14,
    /// The failure rate over every instance's counts (a shared store's window) reached the threshold.
    FleetFailureRate = 15,
    /// The slow-call rate over every instance's counts reached the threshold.
    FleetSlowCallRate = 16,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::FailureRate => "failureRate",
            Reason::ConsecutiveFailures => "consecutiveFailures",
            Reason::SlowCallRate => "slowCallRate",
            Reason::Predicate => "shouldTrip",
            Reason::ResetTimeoutElapsed => "resetTimeout",
            Reason::ProbeSucceeded => "probeSucceeded",
            Reason::ProbeFailed => "probeFailed",
            Reason::HalfOpenTimeout => "halfOpenTimeout",
            Reason::ForcedOpen => "forcedOpen",
            Reason::ManualOpen => "manualOpen",
            Reason::ManualClose => "manualClose",
            Reason::ManualHalfOpen => "manualHalfOpen",
            Reason::Reset => "reset",
            Reason::Restored => "restored",
            Reason::Store => "store",
            Reason::FleetFailureRate => "fleetFailureRate",
            Reason::FleetSlowCallRate => "fleetSlowCallRate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub seq: u64,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub at_ms: u64,
}

/// What `try_acquire` decided for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Permit {
    /// Run it (CLOSED).
    Allowed,
    /// Run it as a half-open probe; hand the generation back with its outcome, so that a probe
    /// that settles after the circuit has moved on cannot decide for the new half-open period.
    Probe(u32),
    /// Don't run it. `None`: forced open until told otherwise.
    Rejected { retry_after_ms: Option<u64> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Rejected by `isFailure`: neither success nor failure.
    Ignored,
    /// Admitted as a probe, then not run: a shared store gave the fleet's probe permit to
    /// another instance. Frees the probe slot and counts as a rejection.
    NotRun,
}

/// Lifetime counters (never reset but by `reset()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub successes: u64,
    pub failures: u64,
    pub rejections: u64,
    pub timeouts: u64,
    pub fallbacks: u64,
    pub ignored: u64,
    pub slow: u64,
}

/// How many transitions the log keeps for listeners that look later (other threads).
const LOG_LEN: usize = 32;

/// What only a transition writes. Made on the first one: most circuits never trip, and these
/// were a sixth of a circuit's memory.
#[derive(Default)]
struct History {
    log: VecDeque<Transition>,
    /// Transitions by [from][to], for Prometheus.
    counts: [[u64; 3]; 3],
}

pub struct Circuit {
    pub config: Config,
    state: State,
    /// OPEN by `open()` without a duration: stays until `close()`, `halfOpen()` or `reset()`.
    forced: bool,
    window: Window,
    pub counters: Counters,
    consecutive_failures: u64,
    consecutive_successes: u64,
    state_changed_at: u64,
    /// When OPEN (not forced): the first moment a probe may run.
    next_attempt_at: Option<u64>,
    /// When HALF_OPEN: the moment from which `halfOpenTimeout` counts (entering, or the last
    /// probe that settled).
    half_open_mark: u64,
    probes_in_flight: u32,
    probe_successes: u32,
    probe_gen: u32,
    /// The open period in force (ms, before jitter): `resetTimeout`, grown by `resetBackoff`
    /// after each failed probe, back to `resetTimeout` when the circuit closes.
    open_period_ms: u64,
    /// xorshift state for `resetBackoff.jitter` (no dependency, no syscall).
    rng: u64,
    /// The outcomes of metrics-only (`enabled: false`) instances: stats show them, no rule
    /// reads them. Made on the first such outcome.
    metrics_window: Option<Box<Window>>,
    /// Lifetime [calls, failures, slow] that vote nowhere (metrics-only outcomes, and outcomes
    /// of an earlier generation): a store must not add them to the fleet's window either.
    pub non_voting: [u64; 3],
    last_failure_at: Option<u64>,
    last_success_at: Option<u64>,
    history: Option<Box<History>>,
    seq: u64,
}

/// Everything `getStats()` reports that the machine knows.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub state: State,
    pub forced: bool,
    pub counters: Counters,
    pub window: Totals,
    pub failure_rate: f64,
    pub slow_call_rate: f64,
    pub consecutive_failures: u64,
    pub consecutive_successes: u64,
    pub latency: LatencySummary,
    pub last_failure_at: Option<u64>,
    pub last_success_at: Option<u64>,
    pub state_changed_at: u64,
    pub next_attempt_at: Option<u64>,
    pub retry_after_ms: Option<u64>,
    pub probes_in_flight: u32,
}

impl Circuit {
    pub fn new(config: Config, now_ms: u64) -> Circuit {
        let window = Window::new(config.window, now_ms);
        let (open_period_ms, rng) = (config.reset_timeout_ms, (now_ms ^ (&config as *const Config as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        Circuit {
            config,
            state: State::Closed,
            forced: false,
            window,
            counters: Counters::default(),
            consecutive_failures: 0,
            consecutive_successes: 0,
            state_changed_at: now_ms,
            next_attempt_at: None,
            half_open_mark: now_ms,
            probes_in_flight: 0,
            probe_successes: 0,
            probe_gen: 0,
            open_period_ms,
            rng,
            metrics_window: None,
            non_voting: [0; 3],
            last_failure_at: None,
            last_success_at: None,
            history: None,
            seq: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_forced(&self) -> bool {
        self.forced
    }

    pub fn next_attempt_at(&self) -> Option<u64> {
        self.next_attempt_at
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Every latency sample since creation or reset (Prometheus histograms are cumulative).
    pub fn lifetime_latency(&self) -> Histogram {
        self.window.lifetime_latency()
    }

    /// Transitions by [from][to] since creation, for Prometheus.
    pub fn transition_counts(&self) -> [[u64; 3]; 3] {
        self.history.as_ref().map_or([[0; 3]; 3], |h| h.counts)
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Transitions with `seq > since`, oldest first (at most the last 32).
    pub fn transitions_since(&self, since: u64) -> impl Iterator<Item = &Transition> {
        self.history.iter().flat_map(|h| h.log.iter()).filter(move |t| t.seq > since)
    }

    /// The lazy, time-driven transitions: OPEN → HALF_OPEN after `resetTimeout`, and
    /// HALF_OPEN → OPEN when no probe settled within `halfOpenTimeout`.
    pub fn refresh(&mut self, now_ms: u64) -> Option<Transition> {
        match self.state {
            State::Open if !self.forced => match self.next_attempt_at {
                Some(at) if now_ms >= at => Some(self.to_half_open(now_ms, Reason::ResetTimeoutElapsed)),
                _ => None,
            },
            State::HalfOpen if self.config.half_open_timeout_ms > 0 => {
                if now_ms >= self.half_open_mark + self.config.half_open_timeout_ms {
                    Some(self.to_open(now_ms, None, Reason::HalfOpenTimeout))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Decides whether one call may run. Counts rejections.
    pub fn try_acquire(&mut self, now_ms: u64) -> (Permit, Option<Transition>) {
        let t = self.refresh(now_ms);
        let permit = match self.state {
            State::Closed => Permit::Allowed,
            State::Open => {
                self.counters.rejections += 1;
                let retry = if self.forced { None } else { self.next_attempt_at.map(|at| at.saturating_sub(now_ms)) };
                Permit::Rejected { retry_after_ms: retry }
            }
            State::HalfOpen => {
                if self.probes_in_flight < self.config.half_open_max_requests {
                    self.probes_in_flight += 1;
                    Permit::Probe(self.probe_gen)
                } else {
                    self.counters.rejections += 1;
                    Permit::Rejected { retry_after_ms: Some(0) }
                }
            }
        };
        (permit, t)
    }

    /// Records one settled call. `probe` is the generation from `Permit::Probe`, if it was one.
    /// `slow` only matters for successes and failures; `timeout` marks a failure by timeout.
    pub fn record(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        slow: bool,
        timeout: bool,
        probe: Option<u32>,
    ) -> Option<Transition> {
        self.record_from(now_ms, outcome, slow, timeout, probe, None, false)
    }

    /// `record`, knowing more of the call. `admitted`: the transition sequence number (its low
    /// 32 bits) when the call was let through; if the circuit has moved since, the call belongs
    /// to an earlier generation (gobreaker): its outcome goes to the lifetime counters only.
    /// `metrics_only`: an outcome of an `enabled: false` instance, shown in the stats (its
    /// own window) but never read by a rule.
    #[allow(clippy::too_many_arguments)]
    pub fn record_from(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        slow: bool,
        timeout: bool,
        probe: Option<u32>,
        admitted: Option<u32>,
        metrics_only: bool,
    ) -> Option<Transition> {
        // A probe of the current half-open period? Stale probes count in the lifetime
        // counters and the window, but cannot decide for a period they did not start in.
        let live_probe = probe.is_some() && probe == Some(self.probe_gen) && self.state == State::HalfOpen;
        let stale_probe = (probe.is_some() && !live_probe)
            || (probe.is_none() && admitted.is_some_and(|s| s != self.seq as u32));
        let voting = !stale_probe && !metrics_only;
        if !voting && matches!(outcome, Outcome::Success | Outcome::Failure) {
            let n = &mut self.non_voting;
            n[0] += 1;
            n[1] += (outcome == Outcome::Failure) as u64;
            n[2] += slow as u64;
        }
        if live_probe {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
            self.half_open_mark = now_ms;
        }
        match outcome {
            Outcome::Ignored => {
                self.counters.ignored += 1;
                return None;
            }
            Outcome::NotRun => {
                self.counters.rejections += 1;
                return None;
            }
            Outcome::Success => {
                self.counters.successes += 1;
                if voting {
                    self.consecutive_successes += 1;
                    self.consecutive_failures = 0;
                }
                self.last_success_at = Some(now_ms);
            }
            Outcome::Failure => {
                self.counters.failures += 1;
                if timeout {
                    self.counters.timeouts += 1;
                }
                if voting {
                    self.consecutive_failures += 1;
                    self.consecutive_successes = 0;
                }
                self.last_failure_at = Some(now_ms);
            }
        }
        if slow {
            self.counters.slow += 1;
        }
        let failure = outcome == Outcome::Failure;
        if stale_probe {
            // A probe of an earlier period, or a call of an earlier generation: it counts in
            // the lifetime counters, but neither in the window of the period that followed nor
            // in any decision.
            return None;
        }
        if metrics_only {
            let w = self.metrics_window.get_or_insert_with(|| Box::new(Window::new(self.config.window, now_ms)));
            w.record(now_ms, failure, slow, 1);
            return None;
        }
        if !live_probe {
            self.window.record(now_ms, failure, slow, 1);
        }
        if live_probe {
            if failure {
                return Some(self.to_open(now_ms, None, Reason::ProbeFailed));
            }
            self.probe_successes += 1;
            if self.probe_successes >= self.config.success_threshold {
                return Some(self.to_closed(now_ms, Reason::ProbeSucceeded));
            }
            return None;
        }
        self.evaluate(now_ms)
    }

    /// The window the rules read (without metrics-only outcomes): what `shouldTrip` is shown.
    pub fn voting_totals(&mut self, now_ms: u64) -> Totals {
        self.window.totals(now_ms)
    }

    /// Gives back `n` probe permits of generation `gen` whose calls will never settle (the
    /// thread that held them exited). Nothing is recorded; another probe may run at once.
    pub fn release_probes(&mut self, gen: u32, n: u32) {
        if self.state == State::HalfOpen && gen == self.probe_gen {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(n);
        }
    }

    /// Records `n` plain successes (not probes, not slow) that happened in the time bucket that
    /// starts at `at_ms`; the fast path batches them this way.
    pub fn record_batch(&mut self, now_ms: u64, at_ms: u64, n: u64) -> Option<Transition> {
        if n == 0 {
            return None;
        }
        self.counters.successes += n;
        self.consecutive_successes += n;
        self.consecutive_failures = 0;
        // The batch happened somewhere in its bucket; its end (or now) is the best bound.
        let latest = now_ms.min(at_ms + self.window.bucket_width_ms().unwrap_or(0));
        self.last_success_at = Some(self.last_success_at.unwrap_or(0).max(latest));
        self.window.record(at_ms, false, false, n);
        self.evaluate(now_ms)
    }

    /// Records `n` plain failures (not probes, not slow, not timeouts) that the fast path
    /// counted within the failure budget, in the time bucket that starts at `at_ms`; the latest
    /// at `last_at_ms`. `after_successes`: they came after the lane's batched successes (so the
    /// consecutive counts end with them).
    pub fn record_failure_batch(&mut self, now_ms: u64, at_ms: u64, n: u64, last_at_ms: u64, after_successes: bool) -> Option<Transition> {
        if n == 0 {
            return None;
        }
        self.counters.failures += n;
        if after_successes {
            self.consecutive_failures = if self.consecutive_successes > 0 { n } else { self.consecutive_failures + n };
            self.consecutive_successes = 0;
        } else if self.consecutive_successes == 0 {
            self.consecutive_failures += n;
        }
        let last = if last_at_ms > 0 { last_at_ms.min(now_ms) } else { now_ms };
        self.last_failure_at = Some(self.last_failure_at.unwrap_or(0).max(last));
        self.window.record(at_ms, true, false, n);
        self.evaluate(now_ms)
    }

    /// How many failures in a row, with nothing else recorded, are certain neither to trip the
    /// circuit nor to let a later success trip it: the fast path may count that many in its
    /// lanes without asking. Zero unless the circuit is CLOSED with a time window and no rule
    /// that needs every outcome in order (consecutive failures, slow calls).
    pub fn failure_budget(&mut self, now_ms: u64) -> u32 {
        const CAP: u64 = 1 << 20;
        let c = &self.config;
        if self.state != State::Closed
            || !matches!(c.window, crate::config::WindowKind::Time { .. })
            || c.consecutive_failures > 0
            || c.slow_call_duration_ms > 0.0
            || c.slow_call_rate_threshold > 0.0
        {
            return 0;
        }
        let t = self.window.totals(now_ms);
        let (thr, min) = (c.failure_threshold, c.effective_minimum() as f64);
        // Safe after x more failures: F + x < thr * max(C + x, min). Non-increasing in x for
        // thr <= 1 (it also covers "a success after them cannot trip": C + x + 1 >= C + x), so
        // the budget is the largest safe x.
        budget(t.failures, t.calls, thr, min, CAP)
    }

    pub fn record_latency(&mut self, at_ms: u64, us: u64) {
        // the window keeps the lifetime's samples too (see `Window::lifetime_latency`)
        self.window.record_latency(at_ms, us);
    }

    /// The CLOSED → OPEN rules, checked after each recorded outcome.
    fn evaluate(&mut self, now_ms: u64) -> Option<Transition> {
        if self.state != State::Closed {
            return None;
        }
        let c = &self.config;
        if c.consecutive_failures > 0 && self.consecutive_failures >= c.consecutive_failures as u64 {
            return Some(self.to_open(now_ms, None, Reason::ConsecutiveFailures));
        }
        let min = c.effective_minimum() as u64;
        let (thr, slow_thr) = (c.failure_threshold, c.slow_call_rate_threshold);
        let t = self.window.totals(now_ms);
        if t.calls >= min && t.calls > 0 {
            if t.failures as f64 / t.calls as f64 >= thr {
                return Some(self.to_open(now_ms, None, Reason::FailureRate));
            }
            if slow_thr > 0.0 && t.slow as f64 / t.calls as f64 >= slow_thr {
                return Some(self.to_open(now_ms, None, Reason::SlowCallRate));
            }
        }
        None
    }

    /// True when a plain success could trip the circuit: the window is below the minimum and
    /// already holds enough failures (or slow calls) that reaching the minimum would open it.
    /// While this holds, the fast path must report every outcome at once instead of batching.
    pub fn success_could_trip(&mut self, now_ms: u64) -> bool {
        if self.state != State::Closed {
            return false;
        }
        let t = self.window.totals(now_ms);
        let min = self.config.effective_minimum() as u64;
        let calls = t.calls + min.saturating_sub(t.calls).max(1);
        let c = &self.config;
        t.failures as f64 / calls as f64 >= c.failure_threshold
            || (c.slow_call_rate_threshold > 0.0 && t.slow as f64 / calls as f64 >= c.slow_call_rate_threshold)
    }

    /// Trips the circuit because a user predicate said so (CLOSED only).
    pub fn trip(&mut self, now_ms: u64) -> Option<Transition> {
        self.trip_for(now_ms, Reason::Predicate)
    }

    /// Trips the circuit for a reason decided outside the machine (CLOSED only): a predicate,
    /// or the counts of a whole fleet.
    pub fn trip_for(&mut self, now_ms: u64, reason: Reason) -> Option<Transition> {
        if self.state == State::Closed {
            Some(self.to_open(now_ms, None, reason))
        } else {
            None
        }
    }

    /// `open()` (forced until told otherwise) or `open(durationMs)` (like a trip).
    pub fn force_open(&mut self, now_ms: u64, duration_ms: Option<u64>) -> Option<Transition> {
        let t = if self.state == State::Open {
            // Already open: the new terms apply, but nothing changes state.
            None
        } else {
            let reason = if duration_ms.is_some() { Reason::ManualOpen } else { Reason::ForcedOpen };
            Some(self.to_open(now_ms, duration_ms, reason))
        };
        self.forced = duration_ms.is_none();
        self.next_attempt_at = duration_ms.map(|d| now_ms + d);
        t
    }

    pub fn close(&mut self, now_ms: u64) -> Option<Transition> {
        self.forced = false;
        if self.state == State::Closed {
            return None;
        }
        Some(self.to_closed(now_ms, Reason::ManualClose))
    }

    pub fn half_open(&mut self, now_ms: u64) -> Option<Transition> {
        self.forced = false;
        if self.state == State::HalfOpen {
            return None;
        }
        Some(self.to_half_open(now_ms, Reason::ManualHalfOpen))
    }

    /// CLOSED, empty window, zeroed counters.
    pub fn reset(&mut self, now_ms: u64) -> Option<Transition> {
        self.forced = false;
        let t = if self.state != State::Closed { Some(self.to_closed(now_ms, Reason::Reset)) } else { None };
        self.window.clear(now_ms);
        if let Some(w) = self.metrics_window.as_mut() {
            w.clear(now_ms);
        }
        self.non_voting = [0; 3];
        self.counters = Counters::default();
        self.window.clear_lifetime();
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
        self.last_failure_at = None;
        self.last_success_at = None;
        t
    }

    /// Puts the machine in a saved state (a snapshot).
    pub fn restore(&mut self, now_ms: u64, state: State, forced: bool, next_attempt_at: Option<u64>) -> Option<Transition> {
        self.apply(now_ms, state, forced, next_attempt_at, Reason::Restored)
    }

    /// Puts the machine in a state decided elsewhere (`reason`: a snapshot, or another
    /// instance's decision read from a store). Nothing changes if it is in that state already,
    /// but an OPEN state takes the given terms (`forced`, `nextAttemptAt`).
    pub fn apply(&mut self, now_ms: u64, state: State, forced: bool, next_attempt_at: Option<u64>, reason: Reason) -> Option<Transition> {
        match state {
            State::Closed => {
                self.forced = false;
                if self.state != State::Closed { Some(self.to_closed(now_ms, reason)) } else { None }
            }
            State::HalfOpen => {
                self.forced = false;
                if self.state != State::HalfOpen { Some(self.to_half_open(now_ms, reason)) } else { None }
            }
            State::Open => {
                let t = if self.state != State::Open { Some(self.to_open(now_ms, None, reason)) } else { None };
                self.forced = forced;
                // Not forced and no time given: it half-opens like any trip would.
                self.next_attempt_at = if forced {
                    None
                } else {
                    Some(next_attempt_at.or(self.next_attempt_at).unwrap_or(now_ms + self.config.reset_timeout_ms))
                };
                // resetBackoff: the period decided elsewhere (another host's failed probe) is
                // the one this instance multiplies if its own probe fails next.
                if let (Some(b), Some(at), false) = (self.config.reset_backoff, next_attempt_at, forced) {
                    self.open_period_ms = at.saturating_sub(now_ms).clamp(self.config.reset_timeout_ms, b.max_ms);
                }
                t
            }
        }
    }

    pub fn stats(&mut self, now_ms: u64) -> Stats {
        let mut window = self.window.totals(now_ms);
        if let Some(w) = self.metrics_window.as_mut() {
            let m = w.totals(now_ms);
            window = Totals { calls: window.calls + m.calls, failures: window.failures + m.failures, successes: window.successes + m.successes, slow: window.slow + m.slow };
        }
        let rate = |n: u64| if window.calls == 0 { 0.0 } else { n as f64 * 100.0 / window.calls as f64 };
        let retry_after_ms = match self.state {
            State::Open if !self.forced => self.next_attempt_at.map(|at| at.saturating_sub(now_ms)),
            State::HalfOpen => Some(0),
            _ => None,
        };
        Stats {
            state: self.state,
            forced: self.forced,
            counters: self.counters,
            window,
            failure_rate: rate(window.failures),
            slow_call_rate: rate(window.slow),
            consecutive_failures: self.consecutive_failures,
            consecutive_successes: self.consecutive_successes,
            latency: self.window.latency(now_ms),
            last_failure_at: self.last_failure_at,
            last_success_at: self.last_success_at,
            state_changed_at: self.state_changed_at,
            next_attempt_at: if self.state == State::Open { self.next_attempt_at } else { None },
            retry_after_ms,
            probes_in_flight: self.probes_in_flight,
        }
    }

    // ---- transitions ----------------------------------------------------------------------

    fn transition(&mut self, now_ms: u64, to: State, reason: Reason) -> Transition {
        let from = self.state;
        self.state = to;
        self.state_changed_at = now_ms;
        // Every transition starts a new probe generation: probes in flight from before can
        // no longer close or re-open the circuit (opossum's "probe closes it later" bug).
        // Generations wrap at 2^30 so that JS can carry them as a small integer.
        self.probe_gen = (self.probe_gen + 1) & 0x3fff_ffff;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
        self.seq += 1;
        let t = Transition { seq: self.seq, from, to, reason, at_ms: now_ms };
        let h = self.history.get_or_insert_with(Default::default);
        h.counts[from as usize][to as usize] += 1;
        if h.log.len() == LOG_LEN {
            h.log.pop_front();
        }
        h.log.push_back(t);
        t
    }

    /// Opening resets nothing but the state.
    fn to_open(&mut self, now_ms: u64, duration_ms: Option<u64>, reason: Reason) -> Transition {
        self.forced = false;
        let period = match duration_ms {
            Some(d) => d,
            None => self.open_period(reason),
        };
        self.next_attempt_at = Some(now_ms + period);
        self.transition(now_ms, State::Open, reason)
    }

    /// The next open period by the rules: `resetTimeout`, or with `resetBackoff`, after a
    /// probe period that failed (HALF_OPEN → OPEN), the previous period × multiplier, capped
    /// at maxMs; jitter spreads it by up to ±jitter of itself, never past maxMs.
    fn open_period(&mut self, reason: Reason) -> u64 {
        let Some(b) = self.config.reset_backoff else { return self.config.reset_timeout_ms };
        let probe_failed = matches!(reason, Reason::ProbeFailed | Reason::HalfOpenTimeout);
        self.open_period_ms = if self.state == State::HalfOpen && probe_failed {
            ((self.open_period_ms as f64 * b.multiplier).min(b.max_ms as f64) as u64).max(self.config.reset_timeout_ms)
        } else {
            self.config.reset_timeout_ms
        };
        let base = self.open_period_ms as f64;
        if b.jitter <= 0.0 {
            return self.open_period_ms;
        }
        // xorshift64: u in [-1, 1)
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (base * (1.0 + b.jitter * u)).clamp(0.0, b.max_ms as f64) as u64
    }

    fn to_half_open(&mut self, now_ms: u64, reason: Reason) -> Transition {
        self.next_attempt_at = None;
        self.half_open_mark = now_ms;
        self.transition(now_ms, State::HalfOpen, reason)
    }

    /// Closing starts a fresh window and resets the consecutive counts.
    fn to_closed(&mut self, now_ms: u64, reason: Reason) -> Transition {
        self.next_attempt_at = None;
        self.open_period_ms = self.config.reset_timeout_ms;
        self.window.clear(now_ms);
        if let Some(w) = self.metrics_window.as_mut() {
            w.clear(now_ms);
        }
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
        self.transition(now_ms, State::Closed, reason)
    }
}

/// The largest x in [1, cap] with F + x < thr * max(C + x, min) (0 if there is none): the
/// failure budget. The condition holds for x below max(a, b), a = thr * min - F (the minimum
/// dominates) and b = (thr * C - F) / (1 - thr) (the calls do), so the answer is read off
/// directly and then checked against the condition itself, one step either way; rounding
/// that needs more than that falls back to a binary search. A stats read publishes every
/// circuit's budget, and the search alone was a fifth of its cost.
pub fn budget(failures: u64, calls: u64, thr: f64, min: f64, cap: u64) -> u32 {
    let safe = |x: u64| (failures + x) as f64 + 1e-9 < thr * ((calls + x) as f64).max(min);
    if !safe(1) {
        return 0;
    }
    if safe(cap) {
        return cap as u32;
    }
    let (f, c) = (failures as f64, calls as f64);
    let a = thr * min - f;
    let b = if thr < 1.0 { (thr * c - f) / (1.0 - thr) } else { f64::INFINITY };
    let guess = (a.max(b).ceil() - 1.0).clamp(1.0, (cap - 1) as f64) as u64;
    for x in [guess, guess.saturating_sub(1), guess + 1] {
        if x >= 1 && x < cap && safe(x) && !safe(x + 1) {
            return x as u32;
        }
    }
    budget_search(safe, cap)
}

/// The binary search `budget` falls back to (safe(1) holds, safe(cap) does not).
fn budget_search(safe: impl Fn(u64) -> bool, cap: u64) -> u32 {
    let (mut lo, mut hi) = (1u64, cap);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if safe(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo as u32
}
