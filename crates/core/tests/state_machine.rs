//! The state machine's contract (PRODUCT.md: "States and transitions", "Windows", "What a
//! call counts as"), driven by a hand-held clock: every `Circuit` method takes `now_ms`, so
//! nothing here sleeps.

use breakwater_core::state_machine::Counters;
use breakwater_core::{Circuit, Config, Outcome, Permit, Reason, State, WindowKind};

/// An arbitrary epoch-ms origin, far from zero so that bucket arithmetic is realistic.
const T0: u64 = 1_700_000_000_000;

fn count_cfg(size: u32, min: u32) -> Config {
    Config { minimum_requests: min, window: WindowKind::Count { size }, ..Config::default() }
}

fn new(cfg: Config) -> Circuit {
    cfg.validate().expect("test config must be valid");
    Circuit::new(cfg, T0)
}

fn ok(c: &mut Circuit, t: u64) -> Option<breakwater_core::Transition> {
    c.record(t, Outcome::Success, false, false, None)
}

fn fail(c: &mut Circuit, t: u64) -> Option<breakwater_core::Transition> {
    c.record(t, Outcome::Failure, false, false, None)
}

fn probe(c: &mut Circuit, t: u64) -> u32 {
    match c.try_acquire(t).0 {
        Permit::Probe(g) => g,
        p => panic!("expected a probe permit at {t}, got {p:?}"),
    }
}

/// A circuit (count window of 10, minimum 4, reset 60 s) tripped at T0 by 4 failures.
fn tripped(cfg: Config) -> Circuit {
    let mut c = new(cfg);
    for i in 0..3 {
        assert_eq!(fail(&mut c, T0 + i), None);
    }
    let t = fail(&mut c, T0).expect("4th failure trips");
    assert_eq!((t.from, t.to, t.reason), (State::Closed, State::Open, Reason::FailureRate));
    c
}

fn tripped_default() -> Circuit {
    tripped(count_cfg(10, 4))
}

// ---- CLOSED → OPEN ------------------------------------------------------------------------

#[test]
fn failure_rate_trips_only_once_the_minimum_is_reached() {
    // time window (default 60 s / 10 buckets), minimumRequests 10, threshold 0.5
    let mut c = new(Config::default());
    for i in 0..9 {
        assert_eq!(fail(&mut c, T0 + i), None, "failure {} of 9 is below the minimum", i + 1);
    }
    let s = c.stats(T0 + 9);
    assert_eq!(s.state, State::Closed);
    assert_eq!(s.window.calls, 9);
    assert_eq!(s.failure_rate, 100.0);
    let t = fail(&mut c, T0 + 9).expect("10th call reaches the minimum");
    assert_eq!(t.reason, Reason::FailureRate);
    assert_eq!(t.at_ms, T0 + 9);
    assert_eq!(c.state(), State::Open);
}

#[test]
fn failure_rate_just_below_threshold_does_not_trip_at_threshold_does() {
    let mut c = new(Config { failure_threshold: 0.3, ..count_cfg(10, 10) });
    for i in 0..8 {
        assert_eq!(ok(&mut c, T0 + i), None);
    }
    assert_eq!(fail(&mut c, T0 + 8), None);
    // 10th call: 2/10 = 20% < 30%
    assert_eq!(fail(&mut c, T0 + 9), None);
    assert_eq!(c.stats(T0 + 9).failure_rate, 20.0);
    // 11th: the ring evicts the 1st success: 3/10 = 30% >= 30%
    let t = fail(&mut c, T0 + 10).expect("3/10 >= 0.3 trips");
    assert_eq!(t.reason, Reason::FailureRate);
}

#[test]
fn count_window_effective_minimum_is_min_of_minimum_requests_and_size() {
    // minimumRequests 100 with a window of 5 calls: the effective minimum is 5
    let cfg = count_cfg(5, 100);
    assert_eq!(cfg.effective_minimum(), 5);
    let mut c = new(cfg);
    for i in 0..4 {
        assert_eq!(fail(&mut c, T0 + i), None);
    }
    let t = fail(&mut c, T0 + 4).expect("5 calls of a 5-call window are enough");
    assert_eq!(t.reason, Reason::FailureRate);
    // a time window is not capped
    let time = Config { minimum_requests: 100, ..Config::default() };
    assert_eq!(time.effective_minimum(), 100);
}

#[test]
fn consecutive_failures_trip_regardless_of_the_minimum_and_a_success_resets_the_run() {
    let mut c = new(Config { consecutive_failures: 3, failure_threshold: 1.0, ..count_cfg(100, 100) });
    fail(&mut c, T0);
    fail(&mut c, T0 + 1);
    assert_eq!(ok(&mut c, T0 + 2), None, "a success breaks the run");
    assert_eq!(c.stats(T0 + 2).consecutive_failures, 0);
    assert_eq!(fail(&mut c, T0 + 3), None);
    assert_eq!(fail(&mut c, T0 + 4), None);
    let t = fail(&mut c, T0 + 5).expect("3 consecutive failures trip");
    assert_eq!(t.reason, Reason::ConsecutiveFailures);
    assert_eq!(c.stats(T0 + 5).window.calls, 6, "well below minimumRequests 100");
}

#[test]
fn slow_call_rate_trips_once_the_minimum_is_reached() {
    let mut c = new(Config {
        slow_call_duration_ms: 1000.0,
        slow_call_rate_threshold: 0.5,
        failure_threshold: 1.0,
        ..count_cfg(10, 4)
    });
    let slow_ok = |c: &mut Circuit, t| c.record(t, Outcome::Success, true, false, None);
    assert_eq!(slow_ok(&mut c, T0), None);
    assert_eq!(ok(&mut c, T0 + 1), None);
    assert_eq!(slow_ok(&mut c, T0 + 2), None, "3 calls < minimum 4");
    let s = c.stats(T0 + 2);
    assert_eq!((s.window.slow, s.counters.slow), (2, 2));
    // 4th call (fast): 2 slow of 4 = 50%
    let t = ok(&mut c, T0 + 3).expect("slow-call rate 2/4 >= 0.5 trips");
    assert_eq!(t.reason, Reason::SlowCallRate);
    assert_eq!(c.stats(T0 + 3).slow_call_rate, 50.0);
}

#[test]
fn slow_is_ignored_for_ignored_outcomes() {
    let mut c = new(Config { slow_call_duration_ms: 10.0, slow_call_rate_threshold: 0.5, ..count_cfg(10, 1) });
    assert_eq!(c.record(T0, Outcome::Ignored, true, false, None), None);
    let s = c.stats(T0);
    assert_eq!(s.counters.ignored, 1);
    assert_eq!(s.counters.slow, 0);
    assert_eq!(s.window.calls, 0);
    assert_eq!(s.state, State::Closed);
}

#[test]
fn a_success_trips_when_it_brings_the_window_up_to_the_minimum() {
    // resilience4j semantics: the rules are evaluated after every outcome, successes included
    let mut c = new(count_cfg(10, 4));
    fail(&mut c, T0);
    fail(&mut c, T0 + 1);
    assert_eq!(ok(&mut c, T0 + 2), None, "3 calls: below the minimum");
    let t = ok(&mut c, T0 + 3).expect("the 4th call, a success, makes 2/4 = 50%");
    assert_eq!((t.from, t.to, t.reason), (State::Closed, State::Open, Reason::FailureRate));
    assert_eq!(c.stats(T0 + 3).counters.successes, 2);
}

#[test]
fn record_batch_of_successes_can_trip_as_well() {
    let mut c = new(count_cfg(10, 4));
    fail(&mut c, T0);
    fail(&mut c, T0);
    let t = c.record_batch(T0 + 5, T0, 2).expect("2 failures + 2 batched successes = 50% of 4");
    assert_eq!(t.reason, Reason::FailureRate);
}

#[test]
fn timeouts_count_as_failures_and_in_timeout_count() {
    let mut c = new(count_cfg(10, 2));
    assert_eq!(c.record(T0, Outcome::Failure, false, true, None), None);
    let t = c.record(T0 + 1, Outcome::Failure, false, true, None).expect("2/2 trips");
    assert_eq!(t.reason, Reason::FailureRate);
    let s = c.stats(T0 + 1);
    assert_eq!((s.counters.failures, s.counters.timeouts), (2, 2));
    assert_eq!(s.last_failure_at, Some(T0 + 1));
}

#[test]
fn trip_by_predicate_only_from_closed() {
    let mut c = new(count_cfg(10, 4));
    let t = c.trip(T0).expect("CLOSED trips");
    assert_eq!(t.reason, Reason::Predicate);
    assert_eq!(c.next_attempt_at(), Some(T0 + 60_000));
    assert_eq!(c.trip(T0 + 1), None, "already OPEN");
}

// ---- OPEN → HALF_OPEN ---------------------------------------------------------------------

#[test]
fn open_half_opens_lazily_at_exactly_reset_timeout() {
    let mut c = tripped_default();
    assert_eq!(c.next_attempt_at(), Some(T0 + 60_000));
    assert_eq!(c.refresh(T0 + 59_999), None);
    assert_eq!(c.state(), State::Open);
    // nothing happens by itself: the state is still OPEN long after, until someone looks
    assert_eq!(c.state(), State::Open);
    let t = c.refresh(T0 + 60_000).expect("at exactly resetTimeout");
    assert_eq!((t.from, t.to, t.reason, t.at_ms), (State::Open, State::HalfOpen, Reason::ResetTimeoutElapsed, T0 + 60_000));
    assert_eq!(c.refresh(T0 + 60_001), None, "only once");
}

#[test]
fn try_acquire_rejects_while_open_counts_rejections_and_reports_retry_after() {
    let mut c = tripped_default();
    assert_eq!(c.try_acquire(T0 + 1), (Permit::Rejected { retry_after_ms: Some(59_999) }, None));
    assert_eq!(c.try_acquire(T0 + 30_000), (Permit::Rejected { retry_after_ms: Some(30_000) }, None));
    assert_eq!(c.try_acquire(T0 + 59_999), (Permit::Rejected { retry_after_ms: Some(1) }, None));
    let s = c.stats(T0 + 59_999);
    assert_eq!(s.counters.rejections, 3);
    assert_eq!(s.retry_after_ms, Some(1));
    assert_eq!(s.next_attempt_at, Some(T0 + 60_000));
    // the first call at resetTimeout both half-opens the circuit and is its probe
    let (p, t) = c.try_acquire(T0 + 60_000);
    assert!(matches!(p, Permit::Probe(_)), "{p:?}");
    assert_eq!(t.map(|t| t.to), Some(State::HalfOpen));
    assert_eq!(c.stats(T0 + 60_000).counters.rejections, 3);
}

#[test]
fn a_frozen_hour_wakes_up_half_open() {
    let mut c = tripped_default();
    let later = T0 + 3_600_000;
    let (p, t) = c.try_acquire(later);
    assert!(matches!(p, Permit::Probe(_)));
    let t = t.unwrap();
    assert_eq!((t.to, t.at_ms), (State::HalfOpen, later));
}

// ---- HALF_OPEN ----------------------------------------------------------------------------

#[test]
fn half_open_allows_max_requests_probes_then_rejects_with_retry_zero() {
    let mut c = tripped(Config { half_open_max_requests: 2, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let g1 = probe(&mut c, at);
    let g2 = probe(&mut c, at);
    assert_eq!(g1, g2, "same half-open period, same generation");
    assert_eq!(c.try_acquire(at + 1).0, Permit::Rejected { retry_after_ms: Some(0) });
    assert_eq!(c.try_acquire(at + 2).0, Permit::Rejected { retry_after_ms: Some(0) });
    let s = c.stats(at + 2);
    assert_eq!(s.probes_in_flight, 2);
    assert_eq!(s.counters.rejections, 2);
    assert_eq!(s.retry_after_ms, Some(0));
    assert_eq!(s.next_attempt_at, None);
}

#[test]
fn success_threshold_consecutive_probe_successes_close() {
    let mut c = tripped(Config { success_threshold: 3, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    for i in 0..2 {
        let g = probe(&mut c, at + i);
        assert_eq!(c.record(at + i, Outcome::Success, false, false, Some(g)), None, "probe success {}", i + 1);
        assert_eq!(c.state(), State::HalfOpen);
    }
    let g = probe(&mut c, at + 2);
    let t = c.record(at + 3, Outcome::Success, false, false, Some(g)).expect("3rd probe success closes");
    assert_eq!((t.from, t.to, t.reason), (State::HalfOpen, State::Closed, Reason::ProbeSucceeded));
    assert_eq!(c.try_acquire(at + 4).0, Permit::Allowed);
}

#[test]
fn a_probe_failure_reopens_for_another_reset_timeout() {
    let mut c = tripped(Config { success_threshold: 2, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let g = probe(&mut c, at);
    assert_eq!(c.record(at + 100, Outcome::Success, false, false, Some(g)), None);
    let g = probe(&mut c, at + 200);
    let t = c.record(at + 500, Outcome::Failure, false, false, Some(g)).expect("probe failure re-opens");
    assert_eq!((t.from, t.to, t.reason), (State::HalfOpen, State::Open, Reason::ProbeFailed));
    assert_eq!(c.next_attempt_at(), Some(at + 500 + 60_000));
    assert_eq!(c.try_acquire(at + 500 + 59_999).0, Permit::Rejected { retry_after_ms: Some(1) });
    // the earlier probe success does not carry over: one success of 2 does not close
    let g = probe(&mut c, at + 500 + 60_000);
    assert_eq!(c.record(at + 500 + 60_001, Outcome::Success, false, false, Some(g)), None);
    assert_eq!(c.state(), State::HalfOpen);
}

#[test]
fn half_open_timeout_reopens_when_no_probe_settles() {
    let mut c = tripped(Config { half_open_timeout_ms: 5_000, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let _g = probe(&mut c, at);
    assert_eq!(c.refresh(at + 4_999), None);
    let t = c.refresh(at + 5_000).expect("no probe settled within 5 s");
    assert_eq!((t.from, t.to, t.reason), (State::HalfOpen, State::Open, Reason::HalfOpenTimeout));
    assert_eq!(c.next_attempt_at(), Some(at + 5_000 + 60_000));
}

#[test]
fn half_open_timeout_counts_from_the_last_settled_probe() {
    let mut c = tripped(Config { half_open_timeout_ms: 5_000, success_threshold: 2, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let g = probe(&mut c, at);
    assert_eq!(c.record(at + 4_000, Outcome::Success, false, false, Some(g)), None);
    assert_eq!(c.refresh(at + 8_999), None, "a probe settled at +4 s");
    assert_eq!(c.refresh(at + 9_000).map(|t| t.reason), Some(Reason::HalfOpenTimeout));
}

#[test]
fn stale_probes_do_not_decide_a_later_half_open_period() {
    let mut c = tripped(Config { half_open_timeout_ms: 5_000, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let old = probe(&mut c, at);
    c.refresh(at + 5_000).expect("half-open timeout re-opens");
    let at2 = at + 5_000 + 60_000;
    let new_gen = probe(&mut c, at2);
    assert_ne!(old, new_gen);
    // the old probe succeeds: it must not close the new period, nor free its slot
    assert_eq!(c.record(at2 + 1, Outcome::Success, false, false, Some(old)), None);
    assert_eq!(c.state(), State::HalfOpen);
    assert_eq!(c.stats(at2 + 1).probes_in_flight, 1);
    assert_eq!(c.try_acquire(at2 + 1).0, Permit::Rejected { retry_after_ms: Some(0) });
    // the old probe fails (another stale one): it must not re-open either
    assert_eq!(c.record(at2 + 2, Outcome::Failure, false, false, Some(old)), None);
    assert_eq!(c.state(), State::HalfOpen);
    // it still counts in the lifetime counters
    let s = c.stats(at2 + 2);
    assert_eq!((s.counters.successes, s.counters.failures), (1, 5));
    // the live probe decides
    let t = c.record(at2 + 3, Outcome::Success, false, false, Some(new_gen)).unwrap();
    assert_eq!(t.reason, Reason::ProbeSucceeded);
}

#[test]
fn a_stale_probe_settling_after_close_counts_but_decides_nothing() {
    let mut c = tripped(Config { half_open_max_requests: 2, ..count_cfg(10, 4) });
    let at = T0 + 60_000;
    let a = probe(&mut c, at);
    let b = probe(&mut c, at);
    c.record(at + 1, Outcome::Success, false, false, Some(a)).expect("closes");
    // b belonged to the half-open period that has ended: lifetime counters only, so it cannot
    // trip the freshly closed circuit (even with consecutiveFailures: 1)
    assert_eq!(c.record(at + 2, Outcome::Failure, false, false, Some(b)), None);
    let s = c.stats(at + 2);
    assert_eq!(s.state, State::Closed);
    assert_eq!((s.window.calls, s.window.failures), (0, 0));
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.probes_in_flight, 0);
}

#[test]
fn an_ignored_outcome_frees_the_probe_slot_without_deciding() {
    let mut c = tripped_default();
    let at = T0 + 60_000;
    let g = probe(&mut c, at);
    assert_eq!(c.try_acquire(at).0, Permit::Rejected { retry_after_ms: Some(0) });
    assert_eq!(c.record(at + 10, Outcome::Ignored, false, false, Some(g)), None);
    let s = c.stats(at + 10);
    assert_eq!((s.state, s.probes_in_flight, s.counters.ignored), (State::HalfOpen, 0, 1));
    let g2 = probe(&mut c, at + 11);
    assert_eq!(g2, g, "same period");
    assert_eq!(c.record(at + 12, Outcome::Success, false, false, Some(g2)).map(|t| t.to), Some(State::Closed));
}

// ---- what opening and closing keep ---------------------------------------------------------

#[test]
fn opening_keeps_the_window_and_consecutive_counts_closing_clears_them() {
    let mut c = new(Config { consecutive_failures: 3, ..count_cfg(10, 10) });
    ok(&mut c, T0);
    for i in 1..=3 {
        fail(&mut c, T0 + i);
    }
    let s = c.stats(T0 + 3);
    assert_eq!(s.state, State::Open);
    assert_eq!((s.window.calls, s.window.failures, s.window.successes), (4, 3, 1));
    assert_eq!((s.consecutive_failures, s.consecutive_successes), (3, 0));
    assert_eq!(s.failure_rate, 75.0);
    // close by a probe: fresh window, zero consecutive counts, lifetime counters kept
    let at = T0 + 3 + 60_000;
    let g = probe(&mut c, at);
    c.record(at, Outcome::Success, false, false, Some(g)).unwrap();
    let s = c.stats(at);
    assert_eq!(s.state, State::Closed);
    assert_eq!((s.window.calls, s.window.failures), (0, 0));
    assert_eq!((s.consecutive_failures, s.consecutive_successes), (0, 0));
    assert_eq!((s.counters.successes, s.counters.failures), (2, 3));
    assert_eq!(s.failure_rate, 0.0);
    assert_eq!(s.state_changed_at, at);
    // the run starts over: two failures don't trip a circuit that needs three
    assert_eq!(fail(&mut c, at + 1), None);
    assert_eq!(fail(&mut c, at + 2), None);
    assert_eq!(fail(&mut c, at + 3).map(|t| t.reason), Some(Reason::ConsecutiveFailures));
}

#[test]
fn a_probe_failure_keeps_the_previous_window() {
    let mut c = tripped_default();
    let at = T0 + 60_000;
    let g = probe(&mut c, at);
    c.record(at, Outcome::Failure, false, false, Some(g)).unwrap();
    let s = c.stats(at);
    // probes are not recorded in the CLOSED window; the 4 failures that tripped it remain
    assert_eq!((s.window.calls, s.window.failures), (4, 4));
    assert_eq!(s.consecutive_failures, 5);
    assert_eq!(s.counters.failures, 5);
}

// ---- manual control ------------------------------------------------------------------------

#[test]
fn force_open_without_duration_stays_open_until_told_otherwise() {
    for how in ["close", "half_open", "reset"] {
        let mut c = new(count_cfg(10, 4));
        let t = c.force_open(T0, None).unwrap();
        assert_eq!((t.to, t.reason), (State::Open, Reason::ForcedOpen));
        assert!(c.is_forced());
        assert_eq!(c.refresh(T0 + 10 * 60_000), None, "resetTimeout does not apply");
        assert_eq!(c.try_acquire(T0 + 3_600_000).0, Permit::Rejected { retry_after_ms: None });
        let s = c.stats(T0 + 3_600_000);
        assert_eq!((s.state, s.forced, s.retry_after_ms, s.next_attempt_at), (State::Open, true, None, None));
        let now = T0 + 3_600_001;
        let t = match how {
            "close" => c.close(now).unwrap(),
            "half_open" => c.half_open(now).unwrap(),
            _ => c.reset(now).unwrap(),
        };
        let (to, reason) = match how {
            "close" => (State::Closed, Reason::ManualClose),
            "half_open" => (State::HalfOpen, Reason::ManualHalfOpen),
            _ => (State::Closed, Reason::Reset),
        };
        assert_eq!((t.from, t.to, t.reason), (State::Open, to, reason), "{how}");
        assert!(!c.is_forced(), "{how}");
    }
}

#[test]
fn force_open_with_duration_half_opens_after_it() {
    let mut c = new(count_cfg(10, 4));
    let t = c.force_open(T0, Some(5_000)).unwrap();
    assert_eq!(t.reason, Reason::ManualOpen);
    assert!(!c.is_forced());
    assert_eq!(c.try_acquire(T0 + 1_000).0, Permit::Rejected { retry_after_ms: Some(4_000) });
    assert_eq!(c.refresh(T0 + 4_999), None);
    assert_eq!(c.refresh(T0 + 5_000).map(|t| t.to), Some(State::HalfOpen));
    // force_open(None) on an already-open circuit changes its terms without a transition
    let mut c = tripped_default();
    assert_eq!(c.force_open(T0 + 1, None), None);
    assert!(c.is_forced());
    assert_eq!(c.refresh(T0 + 120_000), None);
    assert_eq!(c.force_open(T0 + 120_000, Some(1_000)), None);
    assert_eq!(c.refresh(T0 + 121_000).map(|t| t.to), Some(State::HalfOpen));
}

#[test]
fn reset_zeroes_counters_and_window_but_keeps_the_transition_history() {
    let mut c = tripped_default();
    c.try_acquire(T0 + 1);
    c.record(T0 + 2, Outcome::Ignored, false, false, None);
    c.record_latency(T0 + 2, 5_000);
    let seq = c.seq();
    let t = c.reset(T0 + 3).unwrap();
    assert_eq!((t.from, t.to, t.reason, t.seq), (State::Open, State::Closed, Reason::Reset, seq + 1));
    let s = c.stats(T0 + 3);
    assert_eq!(s.counters, Counters::default());
    assert_eq!(s.window.calls, 0);
    assert_eq!(s.latency.count, 0);
    assert_eq!((s.consecutive_failures, s.consecutive_successes), (0, 0));
    assert_eq!((s.last_failure_at, s.last_success_at), (None, None));
    assert_eq!(c.transition_counts()[0][1], 1);
    assert_eq!(c.transition_counts()[1][0], 1);
    // a reset of a CLOSED circuit is no transition, but still empties it
    ok(&mut c, T0 + 4);
    assert_eq!(c.reset(T0 + 5), None);
    assert_eq!(c.stats(T0 + 5).counters.successes, 0);
}

#[test]
fn restore_out_of_forced_open_clears_forced() {
    let mut c = new(count_cfg(10, 4));
    c.force_open(T0, None);
    c.restore(T0 + 1, State::Closed, false, None).unwrap();
    assert_eq!(c.state(), State::Closed);
    assert!(!c.is_forced(), "CLOSED yet forced");
    assert!(!c.stats(T0 + 1).forced);

    let mut c = new(count_cfg(10, 4));
    c.force_open(T0, None);
    c.restore(T0 + 1, State::HalfOpen, false, None).unwrap();
    assert_eq!(c.state(), State::HalfOpen);
    assert!(!c.is_forced(), "HALF_OPEN yet forced");
}

// ---- time window ---------------------------------------------------------------------------

fn time_cfg(duration_ms: u64, buckets: u32, min: u32) -> Config {
    Config { minimum_requests: min, window: WindowKind::Time { duration_ms, buckets }, ..Config::default() }
}

#[test]
fn record_batch_lands_in_its_bucket_and_ages_out_by_elapsed_time() {
    // 10 s in 10 buckets of 1 s; T0 is a multiple of 1000
    let mut c = new(time_cfg(10_000, 10, 100));
    assert_eq!(c.window().bucket_width_ms(), Some(1_000));
    assert_eq!(c.record_batch(T0 + 5_500, T0 + 5_000, 4), None);
    fail(&mut c, T0 + 7_200);
    let s = c.stats(T0 + 7_200);
    assert_eq!((s.window.calls, s.window.successes, s.window.failures), (5, 4, 1));
    assert_eq!(s.counters.successes, 4);
    assert_eq!(s.last_success_at, Some(T0 + 5_500), "min(now, end of the batch's bucket)");
    // bucket [5 s, 6 s) is in the window until 15 s
    assert_eq!(c.stats(T0 + 14_999).window.calls, 5);
    assert_eq!(c.stats(T0 + 15_000).window, breakwater_core::window::Totals { calls: 1, failures: 1, successes: 0, slow: 0 });
    assert_eq!(c.stats(T0 + 17_000).window.calls, 0);
    // a batch for a bucket that has already left the window counts in the lifetime counters only
    assert_eq!(c.record_batch(T0 + 30_000, T0 + 5_000, 3), None);
    let s = c.stats(T0 + 30_000);
    assert_eq!(s.window.calls, 0);
    assert_eq!(s.counters.successes, 7);
}

#[test]
fn a_one_hour_pause_empties_the_time_window() {
    let mut c = new(time_cfg(60_000, 10, 10));
    for i in 0..4 {
        fail(&mut c, T0 + i * 1_000);
    }
    for i in 0..5 {
        ok(&mut c, T0 + 50_000 + i);
    }
    assert_eq!(c.stats(T0 + 55_000).window.calls, 9);
    let later = T0 + 3_600_000;
    assert_eq!(c.stats(later).window.calls, 0);
    // and the minimum is counted afresh: one failure after the pause trips nothing
    assert_eq!(fail(&mut c, later), None);
    assert_eq!(c.stats(later).window.calls, 1);
}

#[test]
fn aged_out_successes_do_not_dilute_new_failures() {
    // 10 s / 10 buckets, minimum 4
    let mut c = new(time_cfg(10_000, 10, 4));
    for i in 0..6 {
        ok(&mut c, T0 + i);
    }
    for i in 0..3 {
        assert_eq!(fail(&mut c, T0 + 9_000 + i), None, "3 of 9 calls");
    }
    // the successes' bucket leaves at +10 s: 3 failures, below the minimum, and one success
    // would make 3/4
    assert!(c.success_could_trip(T0 + 10_000));
    assert_eq!(ok(&mut c, T0 + 10_000).map(|t| t.reason), Some(Reason::FailureRate));
}

#[test]
fn latency_summary_covers_the_window() {
    let mut c = new(time_cfg(10_000, 10, 10));
    for (t, ms) in [(1_000, 10u64), (1_100, 20), (1_200, 30), (8_000, 40)] {
        c.record_latency(T0 + t, ms * 1_000);
    }
    let l = c.stats(T0 + 9_000).latency;
    assert_eq!(l.count, 4);
    assert!((l.mean_ms - 25.0).abs() < 1e-9, "{l:?}");
    assert_eq!(l.max_ms, 40.0);
    // percentiles come from log-linear bins: within ~13% of the exact value
    assert!((l.p50_ms - 20.0).abs() / 20.0 < 0.13, "{l:?}");
    assert!((l.p99_ms - 40.0).abs() / 40.0 < 0.13, "{l:?}");
    // the bucket of the first three leaves at +11 s
    let l = c.stats(T0 + 11_000).latency;
    assert_eq!(l.count, 1);
    assert_eq!((l.mean_ms, l.max_ms), (40.0, 40.0));
    assert_eq!(c.stats(T0 + 18_000).latency.count, 0);

    // a count window keeps the last `size` samples, with an exact max
    let mut c = new(count_cfg(3, 3));
    for ms in [90u64, 1, 2, 3] {
        c.record_latency(T0, ms * 1_000);
    }
    let l = c.stats(T0).latency;
    assert_eq!(l.count, 3);
    assert_eq!(l.max_ms, 3.0, "the 90 ms sample was evicted");
    assert!((l.mean_ms - 2.0).abs() < 1e-9);
}

// ---- transition log and counts -------------------------------------------------------------

#[test]
fn transition_log_seq_and_counts() {
    let mut c = new(Config { half_open_timeout_ms: 1_000, ..count_cfg(10, 1) });
    assert_eq!(c.seq(), 0);
    assert_eq!(c.transitions_since(0).count(), 0);
    fail(&mut c, T0).unwrap(); // 1: C→O
    c.refresh(T0 + 60_000).unwrap(); // 2: O→H
    c.refresh(T0 + 61_000).unwrap(); // 3: H→O (half-open timeout)
    c.refresh(T0 + 121_000).unwrap(); // 4: O→H
    let g = probe(&mut c, T0 + 121_000);
    c.record(T0 + 121_500, Outcome::Success, false, false, Some(g)).unwrap(); // 5: H→C
    assert_eq!(c.seq(), 5);
    let log: Vec<_> = c.transitions_since(0).map(|t| (t.seq, t.from, t.to, t.reason, t.at_ms)).collect();
    assert_eq!(
        log,
        vec![
            (1, State::Closed, State::Open, Reason::FailureRate, T0),
            (2, State::Open, State::HalfOpen, Reason::ResetTimeoutElapsed, T0 + 60_000),
            (3, State::HalfOpen, State::Open, Reason::HalfOpenTimeout, T0 + 61_000),
            (4, State::Open, State::HalfOpen, Reason::ResetTimeoutElapsed, T0 + 121_000),
            (5, State::HalfOpen, State::Closed, Reason::ProbeSucceeded, T0 + 121_500),
        ]
    );
    let seqs: Vec<u64> = c.transitions_since(3).map(|t| t.seq).collect();
    assert_eq!(seqs, vec![4, 5]);
    assert_eq!(c.transitions_since(5).count(), 0);
    let tc = c.transition_counts();
    assert_eq!(tc[State::Closed as usize][State::Open as usize], 1);
    assert_eq!(tc[State::Open as usize][State::HalfOpen as usize], 2);
    assert_eq!(tc[State::HalfOpen as usize][State::Open as usize], 1);
    assert_eq!(tc[State::HalfOpen as usize][State::Closed as usize], 1);
    assert_eq!(tc.iter().flatten().sum::<u64>(), 5);
}

#[test]
fn transition_log_keeps_the_last_32() {
    let mut c = new(count_cfg(10, 4));
    for i in 0..20u64 {
        c.force_open(T0 + i, None).unwrap();
        c.close(T0 + i).unwrap();
    }
    assert_eq!(c.seq(), 40);
    let seqs: Vec<u64> = c.transitions_since(0).map(|t| t.seq).collect();
    assert_eq!(seqs, (9..=40).collect::<Vec<_>>());
    assert_eq!(c.transition_counts()[0][1], 20);
    assert_eq!(c.transition_counts()[1][0], 20);
}

// ---- success_could_trip (the eager mode) ---------------------------------------------------

#[test]
fn success_could_trip_concrete_cases() {
    let mut c = new(count_cfg(10, 4));
    assert!(!c.success_could_trip(T0), "empty window");
    fail(&mut c, T0);
    assert!(!c.success_could_trip(T0), "1 failure: at best 1/4");
    fail(&mut c, T0);
    assert!(c.success_could_trip(T0), "2 failures: successes up to 4 calls make 2/4");
    ok(&mut c, T0);
    assert!(c.success_could_trip(T0), "2/3: the next success makes 2/4");
    let mut c = new(Config { failure_threshold: 0.6, ..count_cfg(10, 4) });
    for o in [false, true, false, true] {
        c.record(T0, if o { Outcome::Success } else { Outcome::Failure }, false, false, None);
    }
    assert_eq!(c.state(), State::Closed, "2/4 < 0.6");
    assert!(!c.success_could_trip(T0), "at the minimum, a success only lowers the rate");
    c.force_open(T0, None);
    assert!(!c.success_could_trip(T0), "only CLOSED");
}

/// Replays `seq` (true = failure) into a fresh circuit.
fn replay(cfg: &Config, seq: &[bool]) -> Circuit {
    let mut c = Circuit::new(cfg.clone(), T0);
    for &f in seq {
        c.record(T0, if f { Outcome::Failure } else { Outcome::Success }, false, false, None);
    }
    c
}

#[test]
fn success_could_trip_matches_what_successes_actually_do() {
    // For every CLOSED history of up to 9 outcomes: eager iff some run of plain successes
    // (each evaluated on its own, as the eager path reports them) would trip the circuit.
    for (thr, size, min) in [(0.5, 6, 4), (0.34, 10, 5), (1.0, 4, 10), (0.25, 8, 8)] {
        let cfg = Config { failure_threshold: thr, ..count_cfg(size, min) };
        for len in 0..=9usize {
            for bits in 0u32..(1 << len) {
                let seq: Vec<bool> = (0..len).map(|i| bits >> i & 1 == 1).collect();
                let mut c = replay(&cfg, &seq);
                if c.state() != State::Closed {
                    continue;
                }
                let eager = c.success_could_trip(T0);
                let mut trips = false;
                for _ in 0..=size {
                    if ok(&mut c, T0).is_some() {
                        trips = true;
                        break;
                    }
                }
                assert_eq!(eager, trips, "thr {thr} size {size} min {min} history {seq:?}");
            }
        }
    }
}

#[test]
fn success_could_trip_for_slow_calls() {
    let mut c = new(Config {
        slow_call_duration_ms: 100.0,
        slow_call_rate_threshold: 0.5,
        failure_threshold: 1.0,
        ..count_cfg(10, 4)
    });
    c.record(T0, Outcome::Success, true, false, None);
    assert!(!c.success_could_trip(T0), "1 slow of at least 4");
    c.record(T0, Outcome::Success, true, false, None);
    assert!(c.success_could_trip(T0), "2 slow of 4 = 50%");
}

#[test]
fn restore_open_unforced_without_next_attempt_out_of_forced_open_still_half_opens() {
    let mut c = new(count_cfg(10, 4));
    c.force_open(T0, None);
    assert_eq!(c.restore(T0 + 1, State::Open, false, None), None, "already OPEN: no transition");
    assert!(!c.is_forced());
    // no longer forced, so resetTimeout must apply from somewhere (at the latest: from now)
    assert!(c.next_attempt_at().is_some(), "OPEN, not forced, and no nextAttemptAt");
    assert_eq!(c.refresh(T0 + 1 + 60_000).map(|t| t.to), Some(State::HalfOpen));
}

// ---- the failure budget of the fast path ---------------------------------------------------

fn budget_cfg(min: u32) -> Config {
    Config { minimum_requests: min, window: WindowKind::Time { duration_ms: 60_000, buckets: 10 }, ..Config::default() }
}

/// Replays `budget` failures one by one, then checks that they did not trip the circuit and
/// that no run of successes after them can; and that one failure more could.
fn check_budget_is_exact(mut c: Circuit, t: u64) {
    let b = c.failure_budget(t) as u64;
    assert!(b < (1 << 20), "budget is bounded here");
    for _ in 0..b {
        assert_eq!(fail(&mut c, t), None, "a failure within the budget tripped the circuit");
    }
    assert!(!c.success_could_trip(t), "within the budget a success could trip");
    assert_eq!(c.failure_budget(t), 0, "the budget is used up");
    assert!(fail(&mut c, t).is_some() || c.success_could_trip(t), "one failure past the budget could decide something");
}

#[test]
fn failure_budget_is_exactly_what_cannot_trip() {
    // empty window, 50% of at least 10: four failures are safe, the fifth makes 5/10 possible
    let mut c = new(budget_cfg(10));
    assert_eq!(c.failure_budget(T0), 4);
    check_budget_is_exact(new(budget_cfg(10)), T0);
    // a window of 100 successes: 99 failures keep 99/199 < 50%
    let mut c2 = new(budget_cfg(10));
    c2.record_batch(T0, T0, 100);
    assert_eq!(c2.failure_budget(T0), 99);
    let mut c3 = new(budget_cfg(10));
    c3.record_batch(T0, T0, 100);
    check_budget_is_exact(c3, T0);
    // threshold 0.3 with 7 successes and 2 failures in the window
    let mut c4 = new(Config { failure_threshold: 0.3, ..budget_cfg(5) });
    c4.record_batch(T0, T0, 7);
    fail(&mut c4, T0);
    fail(&mut c4, T0);
    check_budget_is_exact(c4, T0);
}

#[test]
fn no_failure_budget_where_order_matters_or_when_not_closed() {
    assert_eq!(new(count_cfg(100, 10)).failure_budget(T0), 0, "count windows keep order");
    assert_eq!(new(Config { consecutive_failures: 3, ..budget_cfg(10) }).failure_budget(T0), 0);
    assert_eq!(new(Config { slow_call_duration_ms: 100.0, ..budget_cfg(10) }).failure_budget(T0), 0);
    let mut c = new(budget_cfg(10));
    c.force_open(T0, None);
    assert_eq!(c.failure_budget(T0), 0);
}

#[test]
fn a_failure_batch_counts_like_failures_and_keeps_the_order_for_consecutive_counts() {
    let mut c = new(budget_cfg(1000));
    c.record_batch(T0, T0, 3);
    assert_eq!(c.record_failure_batch(T0 + 5, T0, 2, T0 + 4, true), None);
    let s = c.stats(T0 + 5);
    assert_eq!((s.counters.failures, s.window.failures, s.window.calls), (2, 2, 5));
    assert_eq!((s.consecutive_failures, s.consecutive_successes), (2, 0));
    assert_eq!(s.last_failure_at, Some(T0 + 4));
    // failures that came before the lane's successes leave a run of successes
    let mut d = new(budget_cfg(1000));
    d.record_failure_batch(T0, T0, 2, T0, false);
    d.record_batch(T0, T0, 3);
    let s = d.stats(T0);
    assert_eq!((s.consecutive_failures, s.consecutive_successes), (0, 3));
}

// ---- what a shared store needs ---------------------------------------------------------------

#[test]
fn another_instances_decision_applies_with_reason_store_and_its_terms() {
    let mut c = new(count_cfg(10, 4));
    let at = T0 + 5_000;
    let t = c.apply(T0, State::Open, false, Some(at), Reason::Store).expect("CLOSED -> OPEN");
    assert_eq!((t.from, t.to, t.reason), (State::Closed, State::Open, Reason::Store));
    assert_eq!(c.next_attempt_at(), Some(at), "the fleet's nextAttemptAt, not a local one");
    // Already OPEN: no transition, but the newer terms apply.
    assert_eq!(c.apply(T0 + 1, State::Open, false, Some(at + 1_000), Reason::Store), None);
    assert_eq!(c.next_attempt_at(), Some(at + 1_000));
    let t = c.apply(T0 + 2, State::Closed, false, None, Reason::Store).expect("OPEN -> CLOSED");
    assert_eq!(t.reason, Reason::Store);
    assert_eq!(c.stats(T0 + 2).window.calls, 0, "closing starts a fresh window");
}

#[test]
fn a_fleet_trip_opens_only_a_closed_circuit() {
    let mut c = new(count_cfg(10, 4));
    let t = c.trip_for(T0, Reason::FleetFailureRate).expect("trips");
    assert_eq!((t.to, t.reason), (State::Open, Reason::FleetFailureRate));
    assert_eq!(c.trip_for(T0 + 1, Reason::FleetSlowCallRate), None, "already open");
}

#[test]
fn a_probe_turned_away_by_the_fleet_frees_its_slot_and_counts_as_rejected() {
    let mut c = tripped(count_cfg(10, 4));
    let t = T0 + 60_000;
    let g = probe(&mut c, t);
    assert!(matches!(c.try_acquire(t).0, Permit::Rejected { .. }), "the one slot is taken");
    let before = c.stats(t).counters.rejections;
    assert_eq!(c.record(t, Outcome::NotRun, false, false, Some(g)), None, "decides nothing");
    assert_eq!(c.state(), State::HalfOpen);
    assert_eq!(c.stats(t).counters.rejections, before + 1);
    assert_eq!(c.stats(t).counters.successes + c.stats(t).counters.failures, 4, "neither success nor failure");
    assert!(matches!(c.try_acquire(t).0, Permit::Probe(_)), "the slot is free again");
}

/// The failure budget read off in closed form must be exactly what a search over the rule
/// finds: the largest x with F + x < thr * max(C + x, min), or 0.
#[test]
fn failure_budget_closed_form_matches_the_rule_exactly() {
    const CAP: u64 = 1 << 20;
    let reference = |f: u64, c: u64, thr: f64, min: f64| -> u32 {
        let safe = |x: u64| (f + x) as f64 + 1e-9 < thr * ((c + x) as f64).max(min);
        if !safe(1) {
            return 0;
        }
        // linear where it is small, then doubling + bisection: no shared code with `budget`
        let mut x = 1;
        while x < CAP && safe(x + 1) {
            if x > 4096 {
                let (mut lo, mut hi) = (x, CAP);
                if safe(hi) {
                    return CAP as u32;
                }
                while hi - lo > 1 {
                    let m = (lo + hi) / 2;
                    if safe(m) { lo = m } else { hi = m }
                }
                return lo as u32;
            }
            x += 1;
        }
        x as u32
    };
    let thresholds = [0.01, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.6, 2.0 / 3.0, 0.75, 0.9, 0.99, 0.999, 1.0];
    for &thr in &thresholds {
        for min in [1.0, 2.0, 5.0, 10.0, 20.0, 100.0, 1000.0] {
            for c in (0..120u64).chain([999, 1000, 1001, 65_536, 1_000_003]) {
                for f in (0..=c.min(120)).chain([c / 2, c.saturating_sub(1), c]) {
                    let f = f.min(c);
                    assert_eq!(
                        breakwater_core::state_machine::budget(f, c, thr, min, CAP),
                        reference(f, c, thr, min),
                        "F={f} C={c} thr={thr} min={min}"
                    );
                }
            }
        }
    }
}
