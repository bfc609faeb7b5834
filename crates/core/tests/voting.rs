//! Which outcomes decide (PRODUCT.md, "States and transitions"): outcomes of an earlier
//! generation and of metrics-only (`enabled: false`) instances are counted but never vote, and
//! a probe permit whose holder is gone is given back.

use breakwater_core::arena::layout::*;
use breakwater_core::registry::{self, Settle};
use breakwater_core::{Circuit, Config, Outcome, Permit, State, WindowKind};
use std::sync::atomic::Ordering;

const T0: u64 = 1_700_000_000_000;

fn cfg() -> Config {
    Config { minimum_requests: 4, window: WindowKind::Count { size: 10 }, ..Config::default() }
}

fn outcome(c: &mut Circuit, t: u64, o: Outcome, admitted: Option<u32>, metrics_only: bool) -> Option<breakwater_core::Transition> {
    c.record_from(t, o, false, false, None, admitted, metrics_only)
}

/// Trips the circuit with 4 failures, half-opens it and closes it with one probe.
fn outage_and_recovery(c: &mut Circuit, t: u64) {
    for _ in 0..4 {
        outcome(c, t, Outcome::Failure, Some(c.seq() as u32), false);
    }
    assert_eq!(c.state(), State::Open);
    c.half_open(t);
    let Permit::Probe(g) = c.try_acquire(t).0 else { panic!("no probe") };
    c.record(t, Outcome::Success, false, false, Some(g));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn gobreaker_generation_late_outcomes_of_an_old_generation_decide_nothing() {
    let mut c = Circuit::new(cfg(), T0);
    let admitted = c.seq() as u32;
    outage_and_recovery(&mut c, T0 + 1);
    let before = c.stats(T0 + 2);
    // four calls admitted before the outage fail now: with a minimum of 4 they would trip it
    for _ in 0..4 {
        assert_eq!(outcome(&mut c, T0 + 2, Outcome::Failure, Some(admitted), false), None);
    }
    let s = c.stats(T0 + 2);
    assert_eq!(s.state, State::Closed);
    assert_eq!(s.window.calls, 0);
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.counters.failures, before.counters.failures + 4, "lifetime counters hold them");
    assert_eq!(c.non_voting, [4, 4, 0], "and a store must not add them to the fleet window");
    // the same outcomes admitted in the current generation do trip it
    let now = c.seq() as u32;
    for _ in 0..3 {
        outcome(&mut c, T0 + 3, Outcome::Failure, Some(now), false);
    }
    assert!(outcome(&mut c, T0 + 3, Outcome::Failure, Some(now), false).is_some());
}

#[test]
fn an_old_generation_cannot_close_or_reopen_a_half_open_circuit() {
    let mut c = Circuit::new(cfg(), T0);
    let admitted = c.seq() as u32;
    for _ in 0..4 {
        outcome(&mut c, T0, Outcome::Failure, None, false);
    }
    c.half_open(T0 + 1);
    assert_eq!(outcome(&mut c, T0 + 1, Outcome::Failure, Some(admitted), false), None);
    assert_eq!(outcome(&mut c, T0 + 1, Outcome::Success, Some(admitted), false), None);
    assert_eq!(c.state(), State::HalfOpen);
}

#[test]
fn metrics_only_outcomes_show_in_the_stats_but_never_trip() {
    let mut c = Circuit::new(Config { consecutive_failures: 2, ..cfg() }, T0);
    for i in 0..50 {
        assert_eq!(outcome(&mut c, T0 + i, Outcome::Failure, None, true), None);
    }
    let s = c.stats(T0 + 50);
    assert_eq!(s.state, State::Closed);
    assert_eq!((s.window.calls, s.window.failures), (10, 10), "the stats window shows them (count window of 10)");
    assert_eq!(s.failure_rate, 100.0);
    assert_eq!(s.counters.failures, 50);
    assert_eq!(s.consecutive_failures, 0, "consecutive counts are the rules' and follow voting outcomes only");
    assert_eq!(c.voting_totals(T0 + 50).calls, 0);
    // one voting failure after them: 1 of 1 call, below the minimum, and 1 < 2 in a row
    assert_eq!(outcome(&mut c, T0 + 51, Outcome::Failure, None, false), None);
    assert_eq!(c.state(), State::Closed);
    // closing and reset clear both windows
    c.force_open(T0 + 52, None);
    c.close(T0 + 53);
    assert_eq!(c.stats(T0 + 53).window.calls, 0);
}

#[test]
fn a_detached_lane_gives_back_the_probes_it_held() {
    let a = registry::attach("it-vote-probe", Some(cfg()), T0).unwrap();
    let b = registry::attach("it-vote-probe", Some(cfg()), T0).unwrap();
    registry::control(a.circuit.id, T0, registry::Control::HalfOpen).unwrap();
    let p = registry::acquire(a.lane.id, T0 + 1).unwrap();
    assert!(p > 0, "lane a holds the only probe");
    assert_eq!(registry::acquire(b.lane.id, T0 + 2).unwrap(), -1);
    registry::detach(a.lane.id, T0 + 3).unwrap();
    let q = registry::acquire(b.lane.id, T0 + 4).unwrap();
    assert!(q > 0, "the probe of the detached lane was given back");
    registry::settle(b.lane.id, T0 + 5, Outcome::Success, false, false, q).unwrap();
    assert_eq!(a.circuit.slot.get(MODE).load(Ordering::SeqCst), MODE_CLOSED);
}

#[test]
fn a_settled_probe_is_not_given_back_twice() {
    let cfg2 = Config { half_open_max_requests: 2, ..cfg() };
    let a = registry::attach("it-vote-probe2", Some(cfg2.clone()), T0).unwrap();
    let b = registry::attach("it-vote-probe2", Some(cfg2), T0).unwrap();
    registry::control(a.circuit.id, T0, registry::Control::HalfOpen).unwrap();
    let p = registry::acquire(a.lane.id, T0).unwrap();
    let q = registry::acquire(b.lane.id, T0).unwrap();
    assert!(p > 0 && q > 0);
    // a's probe is ignored (frees its slot), then a goes away: b's probe must still count
    registry::settle(a.lane.id, T0, Outcome::Ignored, false, false, p).unwrap();
    registry::detach(a.lane.id, T0).unwrap();
    let s = registry::stats(b.circuit.id, T0).unwrap().stats;
    assert_eq!(s.probes_in_flight, 1);
}

#[test]
fn take_counts_leaves_out_what_does_not_vote() {
    let a = registry::attach("it-vote-take", Some(cfg()), T0).unwrap();
    let metrics_only = Settle { outcome: Outcome::Failure, slow: false, timeout: false, probe: 0, admitted: None, metrics_only: true };
    for _ in 0..5 {
        registry::settle_from(a.lane.id, T0, metrics_only).unwrap();
    }
    registry::settle(a.lane.id, T0, Outcome::Success, false, false, 0).unwrap();
    assert_eq!(registry::take_counts(a.circuit.id, T0).unwrap(), [1, 0, 0]);
    assert_eq!(registry::stats(a.circuit.id, T0).unwrap().stats.counters.failures, 5);
}
