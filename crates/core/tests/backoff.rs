//! `resetBackoff` (PRODUCT.md, "States and transitions"): the first open period is
//! resetTimeout; each re-open after a failed probe multiplies the previous one, capped at
//! maxMs; jitter spreads it, never past maxMs; closing resets it.

use breakwater_core::{Backoff, Circuit, Config, Outcome, Permit, Reason, State, WindowKind};

const T0: u64 = 1_700_000_000_000;

fn cfg(b: Backoff) -> Config {
    Config { consecutive_failures: 1, reset_timeout_ms: 100, window: WindowKind::Count { size: 10 }, reset_backoff: Some(b), ..Config::default() }
}

fn period(c: &mut Circuit, now: u64) -> u64 {
    let s = c.stats(now);
    assert_eq!(s.state, State::Open);
    s.next_attempt_at.unwrap() - now
}

/// Waits out the open period, takes the probe and fails it; returns the new period.
fn failed_probe(c: &mut Circuit, now: &mut u64) -> u64 {
    *now = c.next_attempt_at().unwrap();
    assert_eq!(c.refresh(*now).map(|t| t.reason), Some(Reason::ResetTimeoutElapsed));
    let Permit::Probe(g) = c.try_acquire(*now).0 else { panic!("no probe") };
    let t = c.record(*now, Outcome::Failure, false, false, Some(g)).unwrap();
    assert_eq!(t.reason, Reason::ProbeFailed);
    period(c, *now)
}

#[test]
fn periods_grow_by_the_multiplier_up_to_max_and_reset_on_close() {
    let mut c = Circuit::new(cfg(Backoff { multiplier: 2.0, max_ms: 700, jitter: 0.0 }), T0);
    let mut now = T0;
    c.record(now, Outcome::Failure, false, false, None);
    let mut seen = vec![period(&mut c, now)];
    for _ in 0..4 {
        seen.push(failed_probe(&mut c, &mut now));
    }
    assert_eq!(seen, [100, 200, 400, 700, 700]);
    // a probe that succeeds closes the circuit
    now = c.next_attempt_at().unwrap();
    c.refresh(now);
    let Permit::Probe(g) = c.try_acquire(now).0 else { panic!() };
    c.record(now, Outcome::Success, false, false, Some(g));
    assert_eq!(c.state(), State::Closed);
    now += 1;
    c.record(now, Outcome::Failure, false, false, None);
    assert_eq!(period(&mut c, now), 100, "closing resets the period");
    // open(duration) uses its own duration and does not grow the period
    c.close(now);
    c.force_open(now, Some(5_000));
    assert_eq!(period(&mut c, now), 5_000);
}

#[test]
fn half_open_timeout_counts_as_a_failed_probe_period() {
    let mut c = Circuit::new(Config { half_open_timeout_ms: 50, ..cfg(Backoff { multiplier: 3.0, max_ms: 10_000, jitter: 0.0 }) }, T0);
    let mut now = T0;
    c.record(now, Outcome::Failure, false, false, None);
    now = c.next_attempt_at().unwrap();
    c.refresh(now);
    assert_eq!(c.state(), State::HalfOpen);
    now += 50;
    assert_eq!(c.refresh(now).map(|t| t.reason), Some(Reason::HalfOpenTimeout));
    assert_eq!(period(&mut c, now), 300);
}

#[test]
fn jitter_stays_within_its_fraction_and_never_passes_max() {
    let mut c = Circuit::new(cfg(Backoff { multiplier: 2.0, max_ms: 400, jitter: 0.5 }), T0);
    let mut now = T0;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        c.close(now);
        c.record(now, Outcome::Failure, false, false, None);
        let first = period(&mut c, now);
        assert!((50..=150).contains(&first), "first period {first}");
        let second = failed_probe(&mut c, &mut now);
        assert!((100..=300).contains(&second), "second period {second}");
        let third = failed_probe(&mut c, &mut now);
        assert!((200..=400).contains(&third), "third period {third} (base 400 = max)");
        let capped = failed_probe(&mut c, &mut now);
        assert!((200..=400).contains(&capped), "capped period {capped}");
        seen.extend([first, second, third, capped]);
    }
    assert!(seen.len() > 50, "jitter hardly varies: {} distinct periods", seen.len());
}

#[test]
fn backoff_is_validated_and_part_of_the_identity() {
    let ok = cfg(Backoff { multiplier: 2.0, max_ms: 1_000, jitter: 0.0 });
    assert!(ok.validate().is_ok());
    for (b, what) in [
        (Backoff { multiplier: 0.5, max_ms: 1_000, jitter: 0.0 }, "multiplier"),
        (Backoff { multiplier: f64::NAN, max_ms: 1_000, jitter: 0.0 }, "multiplier"),
        (Backoff { multiplier: 2.0, max_ms: 10, jitter: 0.0 }, "maxMs"),
        (Backoff { multiplier: 2.0, max_ms: 1_000, jitter: 1.5 }, "jitter"),
    ] {
        let e = cfg(b).validate().unwrap_err();
        assert!(e.contains(what), "{e}");
    }
    let other = Config { reset_backoff: None, ..ok.clone() };
    assert_eq!(ok.first_difference(&other).map(|d| d.0), Some("resetBackoff"));
}

#[test]
fn a_period_decided_elsewhere_is_the_one_a_failed_probe_here_multiplies() {
    let mut c = Circuit::new(cfg(Backoff { multiplier: 2.0, max_ms: 10_000, jitter: 0.0 }), T0);
    // another host's probe failed twice: its snapshot says OPEN until now + 400
    c.apply(T0, State::Open, false, Some(T0 + 400), Reason::Store);
    let mut now = T0;
    assert_eq!(failed_probe(&mut c, &mut now), 800);
}
