//! The process-wide registry. It is global to the test binary and tests run in parallel, so
//! every test uses its own circuit names (prefix `it-`) and never calls `reset_all`.

use breakwater_core::arena::layout::*;
use breakwater_core::registry::{self, Attached, Control, RegistryError};
use breakwater_core::{Config, Outcome, Reason, State, WindowKind};
use std::sync::atomic::Ordering;

const T0: u64 = 1_700_000_000_000;

fn count_cfg(size: u32, min: u32) -> Config {
    Config { minimum_requests: min, window: WindowKind::Count { size }, ..Config::default() }
}

fn mode(a: &Attached) -> i32 {
    a.circuit.slot.get(MODE).load(Ordering::SeqCst)
}

fn fail(a: &Attached, now: u64) -> i32 {
    registry::settle(a.lane.id, now, Outcome::Failure, false, false, 0).unwrap()
}

#[test]
fn same_name_and_options_share_one_circuit() {
    let a = registry::attach("it-share", Some(count_cfg(10, 4)), T0).unwrap();
    let b = registry::attach("it-share", Some(count_cfg(10, 4)), T0 + 1).unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.circuit.id, b.circuit.id);
    assert_ne!(a.lane.id, b.lane.id, "each instance has its own lane");
    assert_eq!(registry::id_of("it-share"), Some(a.circuit.id));
    // failures through either instance go to the one circuit
    fail(&a, T0 + 2);
    fail(&b, T0 + 3);
    fail(&a, T0 + 4);
    assert_eq!(fail(&b, T0 + 5), MODE_OPEN, "the 4th failure of the shared circuit trips it");
    let s = registry::stats(b.circuit.id, T0 + 6).unwrap();
    assert_eq!(s.name, "it-share");
    assert_eq!(s.stats.state, State::Open);
    assert_eq!(s.stats.counters.failures, 4);
    assert_eq!(mode(&a), MODE_OPEN);
    assert_eq!(a.circuit.slot.load_f64(NEXT_ATTEMPT), (T0 + 5 + 60_000) as f64);
    // attaching without options takes the circuit's
    let c = registry::attach("it-share", None, T0 + 7).unwrap();
    assert_eq!((c.circuit.id, c.created, c.config.minimum_requests), (a.circuit.id, false, 4));
    assert_eq!(registry::acquire(c.lane.id, T0 + 8).unwrap(), -1, "the third instance sees OPEN too");
}

#[test]
fn different_options_conflict_naming_the_option() {
    let base = count_cfg(10, 4);
    registry::attach("it-conflict", Some(base.clone()), T0).unwrap();
    let cases: Vec<(Config, &str, &str, &str)> = vec![
        (Config { minimum_requests: 5, ..base.clone() }, "minimumRequests", "4", "5"),
        (Config { reset_timeout_ms: 1_000, ..base.clone() }, "resetTimeout", "60000", "1000"),
        (Config { half_open_max_requests: 3, ..base.clone() }, "halfOpenMaxRequests", "1", "3"),
        (Config { consecutive_failures: 2, ..base.clone() }, "consecutiveFailures", "0", "2"),
        (Config { window: WindowKind::Count { size: 20 }, ..base.clone() }, "window", "{ type: 'count', size: 10 }", "{ type: 'count', size: 20 }"),
    ];
    for (cfg, option, existing, requested) in cases {
        match registry::attach("it-conflict", Some(cfg), T0) {
            Err(e @ RegistryError::Conflict { .. }) => {
                assert_eq!(
                    e,
                    RegistryError::Conflict { option: option_static(option), existing: existing.into(), requested: requested.into() }
                );
                assert!(e.to_string().contains(&format!("{option} = {existing}")), "{e}");
            }
            Err(e) => panic!("{option}: expected a conflict, got {e:?}"),
            Ok(_) => panic!("{option}: expected a conflict, attached"),
        }
    }
    // the refused attachments left the circuit as it was
    let id = registry::id_of("it-conflict").unwrap();
    assert_eq!(registry::stats(id, T0).unwrap().config, base);
}

fn option_static(s: &str) -> &'static str {
    ["minimumRequests", "resetTimeout", "halfOpenMaxRequests", "consecutiveFailures", "window"]
        .into_iter()
        .find(|o| *o == s)
        .unwrap()
}

#[test]
fn attach_refuses_invalid_options_and_unknown_names() {
    let bad = Config { failure_threshold: 2.0, ..Config::default() };
    match registry::attach("it-invalid", Some(bad), T0) {
        Err(RegistryError::Invalid(m)) => assert!(m.contains("failureThreshold") && m.contains('2'), "{m}"),
        _ => panic!("expected Invalid"),
    }
    assert!(registry::id_of("it-invalid").is_none());
    assert!(matches!(registry::attach("it-never-created", None, T0), Err(RegistryError::Unknown)));
}

#[test]
fn lanes_are_drained_before_a_failure_decides() {
    let a = registry::attach("it-drain", Some(count_cfg(10, 10)), T0).unwrap();
    let b = registry::attach("it-drain", Some(count_cfg(10, 10)), T0).unwrap();
    // 5 successes batched in a's lane, 4 failures through b: 4/9, below the minimum
    a.lane.slot.get(OK).fetch_add(5, Ordering::Relaxed);
    for i in 0..4 {
        assert_eq!(fail(&b, T0 + i), MODE_CLOSED);
    }
    assert_eq!(a.lane.slot.get(OK).load(Ordering::Relaxed), 0, "drained");
    // 5th failure: 5/10 >= 0.5 only because a's successes were counted first
    assert_eq!(fail(&b, T0 + 10), MODE_OPEN);
    let s = registry::stats(a.circuit.id, T0 + 11).unwrap().stats;
    assert_eq!((s.window.calls, s.window.successes, s.window.failures), (10, 5, 5));
}

#[test]
fn lanes_are_drained_before_acquire_and_stats() {
    let cfg = count_cfg(10, 4);
    let a = registry::attach("it-drain2", Some(cfg.clone()), T0).unwrap();
    let b = registry::attach("it-drain2", Some(cfg), T0).unwrap();
    fail(&b, T0);
    fail(&b, T0);
    assert_eq!(mode(&a), MODE_CLOSED_EAGER, "2 failures, minimum 4: a success could trip");
    // a (wrongly) batches two successes: the next decision drains them and trips
    a.lane.slot.get(OK).fetch_add(2, Ordering::Relaxed);
    assert_eq!(registry::acquire(b.lane.id, T0 + 1).unwrap(), -1);
    assert_eq!(mode(&a), MODE_OPEN);
    // rejections, fallbacks and ignored errors counted in a lane show in the stats
    b.lane.slot.get(REJECTED).fetch_add(7, Ordering::Relaxed);
    b.lane.slot.get(FALLBACK).fetch_add(3, Ordering::Relaxed);
    b.lane.slot.get(IGNORED).fetch_add(2, Ordering::Relaxed);
    let c = registry::stats(a.circuit.id, T0 + 2).unwrap().stats.counters;
    assert_eq!((c.successes, c.failures, c.rejections, c.fallbacks, c.ignored), (2, 2, 8, 3, 2));
}

#[test]
fn batched_successes_land_in_the_lanes_time_bucket() {
    // 10 s in 10 buckets; the lane's bucket is the one of its attach (or last flush)
    let cfg = Config { minimum_requests: 100, window: WindowKind::Time { duration_ms: 10_000, buckets: 10 }, ..Config::default() };
    let a = registry::attach("it-bucket", Some(cfg), T0 + 500).unwrap();
    assert_eq!(a.bucket_end, (T0 + 1_000) as f64);
    a.lane.slot.get(OK).fetch_add(6, Ordering::Relaxed);
    // drained at +9.5 s: still in the window, which drops the bucket at +10 s
    let s = registry::stats(a.circuit.id, T0 + 9_500).unwrap().stats;
    assert_eq!(s.window.calls, 6);
    assert_eq!(registry::stats(a.circuit.id, T0 + 10_000).unwrap().stats.window.calls, 0);
    // after a flush, the lane's next successes belong to the new bucket
    assert_eq!(registry::flush(a.lane.id, T0 + 12_300).unwrap(), (T0 + 13_000) as f64);
    a.lane.slot.get(OK).fetch_add(4, Ordering::Relaxed);
    let s = registry::stats(a.circuit.id, T0 + 21_999).unwrap().stats;
    assert_eq!((s.window.calls, s.counters.successes), (4, 10));
    assert_eq!(registry::stats(a.circuit.id, T0 + 22_000).unwrap().stats.window.calls, 0);
}

#[test]
fn probes_through_the_registry_and_the_published_mode() {
    let a = registry::attach("it-probe", Some(Config { half_open_timeout_ms: 5_000, ..count_cfg(10, 1) }), T0).unwrap();
    assert_eq!(mode(&a), MODE_CLOSED);
    assert_eq!(fail(&a, T0), MODE_OPEN);
    assert_eq!(a.circuit.slot.get(SEQ).load(Ordering::SeqCst), 1);
    assert_eq!(registry::acquire(a.lane.id, T0 + 59_999).unwrap(), -1);
    // at resetTimeout: a probe (generation + 1 > 0), and the mode says HALF_OPEN
    let p = registry::acquire(a.lane.id, T0 + 60_000).unwrap();
    assert!(p > 0, "{p}");
    assert_eq!(mode(&a), MODE_HALF_OPEN);
    assert_eq!(registry::acquire(a.lane.id, T0 + 60_001).unwrap(), -1, "one probe at a time");
    // the probe settles after halfOpenTimeout: settle refreshes first, so the circuit has
    // re-opened and the late probe success cannot close it
    let m = registry::settle(a.lane.id, T0 + 65_000, Outcome::Success, false, false, p).unwrap();
    assert_eq!(m, MODE_OPEN);
    let log = registry::transitions_since(a.circuit.id, 1).unwrap();
    let log: Vec<_> = log.iter().map(|t| (t.seq, t.to, t.reason)).collect();
    assert_eq!(
        log,
        vec![(2, State::HalfOpen, Reason::ResetTimeoutElapsed), (3, State::Open, Reason::HalfOpenTimeout)]
    );
    // the next half-open period: a live probe closes it
    let p2 = registry::acquire(a.lane.id, T0 + 125_000).unwrap();
    assert!(p2 > 0 && p2 != p, "{p} {p2}");
    assert_eq!(registry::settle(a.lane.id, T0 + 125_010, Outcome::Success, false, false, p2).unwrap(), MODE_CLOSED);
    assert_eq!(a.circuit.slot.get(SEQ).load(Ordering::SeqCst), 5);
    assert_eq!(a.circuit.slot.load_f64(NEXT_ATTEMPT), 0.0);
    let s = registry::stats(a.circuit.id, T0 + 125_010).unwrap();
    assert_eq!(s.transition_counts[1][2], 2);
    assert_eq!(s.transition_counts[2][0], 1);
}

#[test]
fn forced_open_publishes_infinity_and_control_restores() {
    let a = registry::attach("it-force", Some(count_cfg(10, 4)), T0).unwrap();
    registry::control(a.circuit.id, T0, Control::Open(None)).unwrap();
    assert_eq!(mode(&a), MODE_FORCED_OPEN);
    assert_eq!(a.circuit.slot.load_f64(NEXT_ATTEMPT), f64::INFINITY);
    assert_eq!(registry::acquire(a.lane.id, T0 + 3_600_000).unwrap(), -1);
    registry::control(a.circuit.id, T0 + 3_600_000, Control::Open(Some(1_000))).unwrap();
    assert_eq!(mode(&a), MODE_OPEN);
    assert_eq!(a.circuit.slot.load_f64(NEXT_ATTEMPT), (T0 + 3_601_000) as f64);
    registry::control(a.circuit.id, T0 + 3_600_001, Control::Reset).unwrap();
    assert_eq!(mode(&a), MODE_CLOSED);
    let s = registry::stats(a.circuit.id, T0 + 3_600_001).unwrap().stats;
    assert_eq!((s.state, s.counters.rejections), (State::Closed, 0));
}

#[test]
fn dispose_then_detach_frees_the_name() {
    let a = registry::attach("it-dispose", Some(count_cfg(10, 4)), T0).unwrap();
    registry::dispose(a.circuit.id, T0).unwrap();
    assert_eq!(mode(&a), MODE_DISPOSED);
    assert!(registry::id_of("it-dispose").is_none());
    // another breaker may take the name with other options
    let b = registry::attach("it-dispose", Some(count_cfg(20, 4)), T0).unwrap();
    assert!(b.created);
    assert_ne!(b.circuit.id, a.circuit.id);
    // the instance still attached can still read the disposed circuit until it detaches
    assert_eq!(registry::stats(a.circuit.id, T0).unwrap().name, "it-dispose");
    registry::detach(a.lane.id, T0).unwrap();
    // (ids are recycled by the arena and other tests run in parallel, so no check of the
    // freed ids here)
    assert_eq!(registry::id_of("it-dispose"), Some(b.circuit.id));
}

#[test]
fn take_counts_returns_each_call_once_whoever_asks() {
    let a = registry::attach("it-take", Some(count_cfg(100, 50)), T0).unwrap();
    let id = a.circuit.id;
    assert_eq!(registry::take_counts(id, T0).unwrap(), [0, 0, 0]);
    registry::settle(a.lane.id, T0, Outcome::Success, true, false, 0).unwrap();
    fail(&a, T0 + 1);
    // Batched in the lane, not yet drained: take_counts drains first.
    a.lane.slot.get(OK).fetch_add(3, Ordering::SeqCst);
    assert_eq!(registry::take_counts(id, T0 + 2).unwrap(), [5, 1, 1]);
    assert_eq!(registry::take_counts(id, T0 + 3).unwrap(), [0, 0, 0], "taken once");
    fail(&a, T0 + 4);
    assert_eq!(registry::take_counts(id, T0 + 5).unwrap(), [1, 1, 0]);
    registry::control(id, T0 + 6, Control::Reset).unwrap();
    fail(&a, T0 + 7);
    assert_eq!(registry::take_counts(id, T0 + 8).unwrap()[1], 1, "after a reset, counting starts again");
}
