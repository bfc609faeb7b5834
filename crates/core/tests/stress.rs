//! The registry under many threads, as `worker_thread`s drive it: each thread has its own lane
//! and bumps its counters with atomics as the JS hot path does (`Atomics.add`), leaves latency
//! samples in its ring, and crosses into the registry for failures, probes, flushes and stats
//! reads. The checks: no count is lost, half-open probes in flight never exceed
//! `halfOpenMaxRequests`, invariants hold on every concurrent stats read, and every test
//! finishes (a watchdog turns a deadlock into a failure instead of a hung run).
//!
//! The registry is global to the test binary and tests run in parallel: every circuit name is
//! unique (prefix `stress-`), and nothing calls `reset_all`.
//!
//! Rerun: `cargo test -p breakwater-core --test stress`. `STRESS_SCALE` (default 1.0)
//! multiplies every operation count (the valgrind run uses 0.05).

use breakwater_core::arena::layout::*;
use breakwater_core::registry::{self, Attached, Control};
use breakwater_core::{ticker, Config, Outcome, State, WindowKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;

fn scaled(n: u64) -> u64 {
    let s: f64 = std::env::var("STRESS_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    ((n as f64 * s) as u64).max(1)
}

/// Runs `f` on its own thread and fails if it has not finished within `secs`: a deadlock
/// becomes a test failure with a message instead of a run that never ends.
fn within<R: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: not finished after {secs} s (deadlock?)"),
    }
}

/// xorshift64*: a tiny deterministic generator per thread.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A latency sample into the lane's ring, as the JS layer's `_sample` does: flush first when
/// the ring is full (native code drains it), then write the entry and publish the new head.
fn sample(a: &Attached, now: u64, us: i32) {
    let l = a.lane.slot;
    let head = l.get(RING_HEAD).load(Ordering::Acquire);
    if head.wrapping_sub(l.get(RING_TAIL).load(Ordering::Acquire)) >= RING_LEN as i32 {
        registry::flush(a.lane.id, now).unwrap();
    }
    l.get(RING + (head as usize & (RING_LEN - 1))).store(us, Ordering::Relaxed);
    l.get(RING_HEAD).store(head.wrapping_add(1), Ordering::Release);
}

#[derive(Default, Debug, Clone, Copy, PartialEq)]
struct Tally {
    ok: u64,
    failures: u64,
    timeouts: u64,
    slow: u64,
    ignored: u64,
    rejections: u64,
    fallbacks: u64,
    samples: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.failures += o.failures;
        self.timeouts += o.timeouts;
        self.slow += o.slow;
        self.ignored += o.ignored;
        self.rejections += o.rejections;
        self.fallbacks += o.fallbacks;
        self.samples += o.samples;
    }
}

/// 8 threads × 50,000 operations on one circuit that never trips: every success, failure,
/// ignored error, rejection, fallback and latency sample must show in the final stats, and the
/// window must hold every success and failure.
#[test]
fn no_count_is_lost_across_eight_lanes() {
    const THREADS: u64 = 8;
    let ops = scaled(50_000);
    within(120, "no_count_is_lost", move || {
        // a 10-minute window that the test cannot outlive, and a minimum it never reaches
        let cfg = Config {
            minimum_requests: u32::MAX,
            window: WindowKind::Time { duration_ms: 600_000, buckets: 10 },
            ..Config::default()
        };
        let name = "stress-counts";
        let main = registry::attach(name, Some(cfg.clone()), ticker::now_ms()).unwrap();
        let start = Arc::new(Barrier::new(THREADS as usize));
        let handles: Vec<_> = (0..THREADS)
            .map(|k| {
                let (cfg, start) = (cfg.clone(), start.clone());
                thread::spawn(move || {
                    let a = registry::attach(name, Some(cfg), ticker::now_ms()).unwrap();
                    let (lane, l) = (a.lane.id, a.lane.slot);
                    let mut rng = Rng::new(k + 1);
                    let mut t = Tally::default();
                    let mut last_seen = (0u64, 0u64);
                    start.wait();
                    for _ in 0..ops {
                        let now = ticker::now_ms();
                        match rng.below(100) {
                            // the fast path: a success is one atomic add in the lane
                            0..=59 => {
                                l.get(OK).fetch_add(1, Ordering::Relaxed);
                                t.ok += 1;
                            }
                            60..=69 => {
                                let timeout = rng.below(3) == 0;
                                registry::settle(lane, now, Outcome::Failure, false, timeout, 0).unwrap();
                                t.failures += 1;
                                t.timeouts += timeout as u64;
                            }
                            70..=73 => {
                                registry::settle(lane, now, Outcome::Success, true, false, 0).unwrap();
                                t.ok += 1;
                                t.slow += 1;
                            }
                            74..=77 => {
                                l.get(IGNORED).fetch_add(1, Ordering::Relaxed);
                                t.ignored += 1;
                            }
                            78..=81 => {
                                let p = registry::acquire(lane, now).unwrap();
                                assert_eq!(p, 0, "the circuit never leaves CLOSED here");
                                l.get(OK).fetch_add(1, Ordering::Relaxed);
                                t.ok += 1;
                            }
                            82..=83 => {
                                registry::flush(lane, now).unwrap();
                            }
                            84..=86 => {
                                let s = registry::stats(a.circuit.id, now).unwrap().stats;
                                let seen = (s.counters.successes, s.counters.failures);
                                assert!(seen.0 >= last_seen.0 && seen.1 >= last_seen.1, "counters went backwards: {last_seen:?} -> {seen:?}");
                                assert_eq!(s.window.calls, s.window.successes + s.window.failures);
                                assert_eq!(s.state, State::Closed);
                                last_seen = seen;
                            }
                            87..=90 => {
                                sample(&a, now, 1 + rng.below(2_000_000) as i32);
                                t.samples += 1;
                            }
                            91..=93 => {
                                l.get(REJECTED).fetch_add(1, Ordering::Relaxed);
                                t.rejections += 1;
                            }
                            94..=95 => {
                                l.get(FALLBACK).fetch_add(1, Ordering::Relaxed);
                                t.fallbacks += 1;
                            }
                            _ => {
                                let (w, _, _) = registry::counts(lane, now).unwrap();
                                assert!(w.failures <= w.calls);
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        let mut total = Tally::default();
        for h in handles {
            total.add(&h.join().expect("a worker panicked"));
        }
        let s = registry::stats(main.circuit.id, ticker::now_ms()).unwrap();
        let c = s.stats.counters;
        let got = Tally {
            ok: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            slow: c.slow,
            ignored: c.ignored,
            rejections: c.rejections,
            fallbacks: c.fallbacks,
            samples: registry::lifetime_latency(main.circuit.id, ticker::now_ms()).unwrap().count(),
        };
        assert_eq!(got, total, "lifetime counters vs what the threads did");
        assert_eq!(s.stats.window.calls, total.ok + total.failures, "the window holds every success and failure");
        assert_eq!((s.stats.window.successes, s.stats.window.failures, s.stats.window.slow), (total.ok, total.failures, total.slow));
        assert_eq!(s.stats.state, State::Closed);
        assert_eq!(s.stats.latency.count, total.samples, "window latency samples");
        for k in [OK, IGNORED, REJECTED, FALLBACK] {
            assert_eq!(main.lane.slot.get(k).load(Ordering::SeqCst), 0);
        }
        eprintln!("no_count_is_lost: {THREADS} threads x {ops} ops: {total:?}");
    });
}

/// Rounds of 8 threads calling `acquire` at the same instant on a circuit just put in
/// HALF_OPEN: exactly `halfOpenMaxRequests` (3) probes are granted each round, all of the
/// round's generation; the others are rejected and counted.
#[test]
fn concurrent_acquires_in_half_open_grant_exactly_the_maximum() {
    const THREADS: usize = 8;
    const MAX: u32 = 3;
    let rounds = scaled(300);
    within(120, "concurrent_acquires", move || {
        let cfg = Config { half_open_max_requests: MAX, minimum_requests: 1, window: WindowKind::Count { size: 10 }, ..Config::default() };
        let name = "stress-half-open-barrier";
        let main = registry::attach(name, Some(cfg.clone()), T0).unwrap();
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let grants: Arc<Mutex<Vec<i32>>> = Arc::default();
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (cfg, barrier, grants) = (cfg.clone(), barrier.clone(), grants.clone());
                thread::spawn(move || {
                    let a = registry::attach(name, Some(cfg), T0).unwrap();
                    for r in 0..rounds {
                        let now = T0 + 10 * r + 1;
                        barrier.wait(); // the circuit is HALF_OPEN
                        let p = registry::acquire(a.lane.id, now).unwrap();
                        grants.lock().unwrap().push(p);
                        barrier.wait(); // everyone has asked
                        barrier.wait(); // the round is checked: settle what we hold
                        if p > 0 {
                            registry::settle(a.lane.id, now + 1, Outcome::Ignored, false, false, p).unwrap();
                        }
                    }
                })
            })
            .collect();
        let mut rejected = 0;
        let mut gens = Vec::new();
        for r in 0..rounds {
            let now = T0 + 10 * r;
            registry::control(main.circuit.id, now, Control::Open(None)).unwrap();
            registry::control(main.circuit.id, now, Control::HalfOpen).unwrap();
            barrier.wait();
            barrier.wait();
            let mut g = std::mem::take(&mut *grants.lock().unwrap());
            g.sort();
            let probes: Vec<i32> = g.iter().copied().filter(|&p| p > 0).collect();
            assert_eq!(probes.len() as u32, MAX, "round {r}: permits {g:?}");
            assert!(probes.iter().all(|&p| p == probes[0]), "round {r}: one generation: {g:?}");
            assert!(g.iter().all(|&p| p == -1 || p > 0), "round {r}: no plain permit in HALF_OPEN: {g:?}");
            rejected += g.iter().filter(|&&p| p < 0).count() as u64;
            let s = registry::stats(main.circuit.id, now + 1).unwrap().stats;
            assert_eq!((s.state, s.probes_in_flight), (State::HalfOpen, MAX), "round {r}");
            gens.push(probes[0]);
            barrier.wait();
        }
        for h in handles {
            h.join().expect("a worker panicked");
        }
        gens.dedup();
        assert_eq!(gens.len() as u64, rounds, "a new probe generation each round");
        let s = registry::stats(main.circuit.id, T0 + 10 * rounds).unwrap().stats;
        assert_eq!(s.counters.rejections, rejected);
        assert_eq!(s.counters.ignored, rounds * MAX as u64);
        assert_eq!(s.probes_in_flight, 0, "every probe settled (ignored frees its slot)");
        eprintln!("concurrent_acquires: {rounds} rounds x {THREADS} threads, {rejected} rejected");
    });
}

/// Free-running probes: 6 threads acquire, hold, and settle probes (success, failure, ignored)
/// while the circuit cycles CLOSED → OPEN → HALF_OPEN on a shared clock. The probes the
/// threads hold of any one generation never exceed the maximum, and no lifetime count is lost.
#[test]
fn probes_in_flight_never_exceed_the_maximum_while_cycling() {
    const THREADS: u64 = 6;
    const MAX: u32 = 2;
    let ops = scaled(20_000);
    within(120, "probes_in_flight", move || {
        let cfg = Config {
            half_open_max_requests: MAX,
            success_threshold: 2,
            minimum_requests: 2,
            reset_timeout_ms: 40,
            half_open_timeout_ms: 25,
            window: WindowKind::Count { size: 4 },
            ..Config::default()
        };
        let name = "stress-half-open-cycle";
        let main = registry::attach(name, Some(cfg.clone()), T0).unwrap();
        let clock = Arc::new(AtomicU64::new(T0));
        let held: Arc<Mutex<HashMap<i32, u32>>> = Arc::default();
        let worst = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|k| {
                let (cfg, clock, held, worst) = (cfg.clone(), clock.clone(), held.clone(), worst.clone());
                thread::spawn(move || {
                    let a = registry::attach(name, Some(cfg), T0).unwrap();
                    let mut rng = Rng::new(100 + k);
                    let mut t = Tally::default();
                    let mut probes = 0u64;
                    for _ in 0..ops {
                        let now = clock.fetch_add(1, Ordering::Relaxed);
                        let p = registry::acquire(a.lane.id, now).unwrap();
                        if p < 0 {
                            t.rejections += 1;
                            continue;
                        }
                        if p > 0 {
                            probes += 1;
                            let n = {
                                let mut h = held.lock().unwrap();
                                let n = h.entry(p).or_insert(0);
                                *n += 1;
                                *n
                            };
                            assert!(n <= MAX, "{n} probes of generation {} held at once, max {MAX}", p - 1);
                            worst.fetch_max(n as u64, Ordering::Relaxed);
                            if rng.below(4) == 0 {
                                thread::yield_now(); // hold it a while
                            }
                            *held.lock().unwrap().get_mut(&p).unwrap() -= 1;
                        }
                        let now = clock.load(Ordering::Relaxed);
                        match rng.below(10) {
                            0..=4 => {
                                registry::settle(a.lane.id, now, Outcome::Success, false, false, p).unwrap();
                                t.ok += 1;
                            }
                            5..=7 => {
                                registry::settle(a.lane.id, now, Outcome::Failure, false, false, p).unwrap();
                                t.failures += 1;
                            }
                            _ => {
                                registry::settle(a.lane.id, now, Outcome::Ignored, false, false, p).unwrap();
                                t.ignored += 1;
                            }
                        }
                        if rng.below(50) == 0 {
                            let s = registry::stats(a.circuit.id, now).unwrap().stats;
                            assert!(s.probes_in_flight <= MAX, "{} probes in flight", s.probes_in_flight);
                            if s.state != State::HalfOpen {
                                assert_eq!(s.probes_in_flight, 0, "probes in flight in {:?}", s.state);
                            }
                        }
                    }
                    (t, probes)
                })
            })
            .collect();
        let mut total = Tally::default();
        let mut probes = 0;
        for h in handles {
            let (t, p) = h.join().expect("a worker panicked");
            total.add(&t);
            probes += p;
        }
        let s = registry::stats(main.circuit.id, clock.load(Ordering::Relaxed)).unwrap();
        let c = s.stats.counters;
        assert_eq!((c.successes, c.failures, c.ignored, c.rejections), (total.ok, total.failures, total.ignored, total.rejections));
        assert!(s.stats.probes_in_flight <= MAX);
        let cycles = s.transition_counts[1][2] + s.transition_counts[0][1];
        assert!(probes > 100 && cycles > 100, "the test must exercise HALF_OPEN: {probes} probes, {cycles} transitions");
        eprintln!(
            "probes_in_flight: {THREADS} threads x {ops} ops: {probes} probes granted, at most {} held at once, transitions {:?}",
            worst.load(Ordering::Relaxed),
            s.transition_counts
        );
    });
}

/// Instances come and go (attach, count, detach) on 4 threads while a fifth reads stats: the
/// counts of every detached lane are kept, and recycled lane slots start clean.
#[test]
fn attach_detach_churn_keeps_every_count() {
    const THREADS: u64 = 4;
    let iters = scaled(2_000);
    within(120, "churn", move || {
        let cfg = Config {
            minimum_requests: u32::MAX,
            window: WindowKind::Time { duration_ms: 600_000, buckets: 10 },
            ..Config::default()
        };
        let name = "stress-churn";
        let main = registry::attach(name, Some(cfg.clone()), ticker::now_ms()).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let done = done.clone();
            let id = main.circuit.id;
            thread::spawn(move || {
                let mut reads = 0u64;
                let mut last = 0;
                while !done.load(Ordering::Relaxed) {
                    let s = registry::stats(id, ticker::now_ms()).unwrap().stats;
                    assert!(s.counters.successes >= last, "successes went backwards");
                    last = s.counters.successes;
                    reads += 1;
                    thread::yield_now();
                }
                reads
            })
        };
        let handles: Vec<_> = (0..THREADS)
            .map(|k| {
                let cfg = cfg.clone();
                thread::spawn(move || {
                    let mut rng = Rng::new(200 + k);
                    let mut t = Tally::default();
                    for _ in 0..iters {
                        let now = ticker::now_ms();
                        let a = registry::attach(name, Some(cfg.clone()), now).unwrap();
                        for f in [OK, IGNORED, REJECTED, FALLBACK, RING_HEAD, RING_TAIL] {
                            assert_eq!(a.lane.slot.get(f).load(Ordering::SeqCst), 0, "a recycled lane starts zeroed");
                        }
                        let n = 1 + rng.below(20);
                        a.lane.slot.get(OK).fetch_add(n as i32, Ordering::Relaxed);
                        t.ok += n;
                        if rng.below(2) == 0 {
                            registry::settle(a.lane.id, now, Outcome::Failure, false, false, 0).unwrap();
                            t.failures += 1;
                        }
                        if rng.below(3) == 0 {
                            sample(&a, now, 1_000);
                            t.samples += 1;
                        }
                        // detach drains what the lane still holds
                        registry::detach(a.lane.id, now).unwrap();
                    }
                    t
                })
            })
            .collect();
        let mut total = Tally::default();
        for h in handles {
            total.add(&h.join().expect("a worker panicked"));
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().expect("the reader panicked");
        let s = registry::stats(main.circuit.id, ticker::now_ms()).unwrap();
        assert_eq!((s.stats.counters.successes, s.stats.counters.failures), (total.ok, total.failures));
        assert_eq!(registry::lifetime_latency(main.circuit.id, ticker::now_ms()).unwrap().count(), total.samples);
        assert_eq!(s.stats.window.calls, total.ok + total.failures);
        eprintln!("churn: {THREADS} threads x {iters} attach/detach, {reads} concurrent stats reads: {total:?}");
    });
}

/// Everything at once on one circuit, control operations included (open, open(d), close,
/// halfOpen, reset, trip), on a shared clock: no panic, no deadlock, and every concurrent
/// stats read is self-consistent.
#[test]
fn chaos_with_control_operations() {
    const THREADS: u64 = 6;
    let ops = scaled(15_000);
    within(120, "chaos", move || {
        let cfg = Config {
            half_open_max_requests: 2,
            minimum_requests: 3,
            consecutive_failures: 4,
            slow_call_rate_threshold: 0.8,
            slow_call_duration_ms: 100.0,
            reset_timeout_ms: 30,
            half_open_timeout_ms: 20,
            window: WindowKind::Time { duration_ms: 200, buckets: 4 },
            ..Config::default()
        };
        let name = "stress-chaos";
        registry::attach(name, Some(cfg.clone()), T0).unwrap();
        let clock = Arc::new(AtomicU64::new(T0));
        let handles: Vec<_> = (0..THREADS)
            .map(|k| {
                let (cfg, clock) = (cfg.clone(), clock.clone());
                thread::spawn(move || {
                    let a = registry::attach(name, Some(cfg), T0).unwrap();
                    let (lane, cid) = (a.lane.id, a.circuit.id);
                    let mut rng = Rng::new(300 + k);
                    let mut pending: Vec<i32> = Vec::new();
                    let mut seq = 0;
                    for _ in 0..ops {
                        let now = clock.fetch_add(rng.below(3), Ordering::Relaxed);
                        match rng.below(100) {
                            0..=29 => {
                                if a.circuit.slot.get(MODE).load(Ordering::Acquire) == MODE_CLOSED {
                                    a.lane.slot.get(OK).fetch_add(1, Ordering::Relaxed);
                                } else {
                                    registry::settle(lane, now, Outcome::Success, rng.below(4) == 0, false, 0).unwrap();
                                }
                            }
                            30..=49 => {
                                let p = registry::acquire(lane, now).unwrap();
                                if p >= 0 {
                                    pending.push(p);
                                }
                            }
                            50..=69 => {
                                if !pending.is_empty() {
                                    let p = pending.swap_remove(rng.below(pending.len() as u64) as usize);
                                    let o = [Outcome::Success, Outcome::Failure, Outcome::Ignored][rng.below(3) as usize];
                                    registry::settle(lane, now, o, rng.below(5) == 0, o == Outcome::Failure && rng.below(2) == 0, p).unwrap();
                                }
                            }
                            70..=79 => {
                                registry::settle(lane, now, Outcome::Failure, false, false, 0).unwrap();
                            }
                            80..=82 => {
                                let op = match rng.below(6) {
                                    0 => Control::Open(None),
                                    1 => Control::Open(Some(rng.below(50))),
                                    2 => Control::Close,
                                    3 => Control::HalfOpen,
                                    4 => Control::Reset,
                                    _ => Control::Restore(State::Open, false, None),
                                };
                                registry::control(cid, now, op).unwrap();
                            }
                            83 => registry::trip(lane, now).unwrap(),
                            84..=86 => {
                                registry::flush(lane, now).unwrap();
                            }
                            87..=89 => sample(&a, now, rng.below(500_000) as i32),
                            90..=95 => {
                                let s = registry::stats(cid, now).unwrap().stats;
                                assert!(s.probes_in_flight <= 2, "{} probes in flight", s.probes_in_flight);
                                if s.state != State::HalfOpen {
                                    assert_eq!(s.probes_in_flight, 0, "probes in flight in {:?}", s.state);
                                }
                                assert_eq!(s.window.calls, s.window.successes + s.window.failures);
                                assert!(s.window.slow <= s.window.calls);
                                assert!((0.0..=100.0).contains(&s.failure_rate), "{}", s.failure_rate);
                                assert_eq!(s.next_attempt_at.is_some(), s.state == State::Open && !s.forced);
                            }
                            _ => {
                                let log = registry::transitions_since(cid, seq).unwrap();
                                for w in log.windows(2) {
                                    assert_eq!(w[0].seq + 1, w[1].seq, "transition log in order");
                                    assert_eq!(w[0].to, w[1].from, "each transition starts where the last ended");
                                }
                                if let Some(t) = log.last() {
                                    seq = t.seq;
                                }
                            }
                        }
                    }
                    // settle what is still in flight
                    for p in pending {
                        registry::settle(lane, clock.load(Ordering::Relaxed), Outcome::Success, false, false, p).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a worker panicked");
        }
        let id = registry::id_of(name).unwrap();
        let s = registry::stats(id, clock.load(Ordering::Relaxed)).unwrap();
        eprintln!("chaos: {THREADS} threads x {ops} ops, transitions {:?}, final {:?}", s.transition_counts, s.stats.state);
        assert!(s.transition_counts.iter().flatten().sum::<u64>() > 50, "the test must move the circuit");
    });
}

/// Circuits created and disposed over and over (unique names, 2 threads), as breakers made per
/// request and disposed would be: each name is gone afterwards, and the arena recycles the
/// slots of disposed circuits and detached lanes instead of growing.
#[test]
fn create_and_dispose_churn_recycles_slots() {
    const THREADS: u64 = 2;
    let iters = scaled(1_000);
    within(120, "dispose churn", move || {
        let handles: Vec<_> = (0..THREADS)
            .map(|k| {
                thread::spawn(move || {
                    let mut max_id = 0;
                    for i in 0..iters {
                        let name = format!("stress-dispose-{k}-{i}");
                        let now = T0 + i;
                        let a = registry::attach(&name, Some(Config { minimum_requests: 1, window: WindowKind::Count { size: 4 }, ..Config::default() }), now).unwrap();
                        assert!(a.created);
                        max_id = max_id.max(a.circuit.id).max(a.lane.id);
                        a.lane.slot.get(OK).fetch_add(3, Ordering::Relaxed);
                        registry::settle(a.lane.id, now, Outcome::Failure, false, false, 0).unwrap();
                        let s = registry::stats(a.circuit.id, now).unwrap().stats;
                        assert_eq!((s.counters.successes, s.counters.failures), (3, 1));
                        registry::dispose(a.circuit.id, now).unwrap();
                        assert_eq!(a.circuit.slot.get(MODE).load(Ordering::Acquire), MODE_DISPOSED);
                        registry::detach(a.lane.id, now).unwrap();
                        assert!(registry::id_of(&name).is_none());
                    }
                    max_id
                })
            })
            .collect();
        let max_id = handles.into_iter().map(|h| h.join().expect("a worker panicked")).max().unwrap();
        // 2 slots per cycle: without recycling the ids would pass 2 × THREADS × iters (4,000
        // at scale 1); with it they stay near the number of slots alive at once
        assert!(max_id < 1_024, "slot ids reached {max_id}: disposed circuits or lanes not recycled");
        eprintln!("dispose churn: {THREADS} threads x {iters} create/dispose cycles, highest slot id {max_id}");
    });
}
