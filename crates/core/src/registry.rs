//! The process-wide registry: one circuit per name, shared by every worker thread.
//!
//! A circuit is a `Circuit` state machine behind a mutex, plus a shared-memory slot (see
//! `arena.rs`) that mirrors what the hot path needs to know without asking: the mode word
//! (CLOSED and nothing to report, OPEN until `nextAttemptAt`, anything else: ask) and the
//! transition sequence number.
//!
//! Each JS instance attached to a circuit gets a lane: a slot where it counts plain
//! successes, rejections, fallbacks and ignored errors with `Atomics.add`, and leaves sampled
//! latencies in a small ring. Native code drains every lane of a circuit before it decides
//! anything (a failure, a flush at the end of a time bucket, a stats read), so decisions
//! always see every count. A lane's pending successes all belong to one time bucket: the
//! instance flushes when the coarse clock passes the bucket's end, so the batching never
//! moves a call into the wrong bucket.

use crate::arena::{self, layout::*, SlotRef};
use crate::config::{Config, WindowKind};
use crate::state_machine::{Circuit, Outcome, Permit, Reason, State, Stats, Transition};
use crate::ticker;
use crate::window::Totals;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

struct LaneState {
    slot: SlotRef,
    /// Start of the time bucket the lane's pending successes belong to.
    epoch_start: u64,
    /// Half-open probe permits this lane's thread holds, all of generation `probe_gen` (a
    /// lane belongs to one thread): given back if the thread exits before they settle.
    probes: u32,
    probe_gen: u32,
}

struct Inner {
    machine: Circuit,
    lanes: Vec<LaneState>,
    disposed: bool,
    /// The transition sequence number last published (hooks run when it moves).
    published_seq: u64,
    /// Lifetime [calls, failures, slow] when a store last took this process's counts.
    store_taken: [u64; 3],
}

/// Called with a circuit's id after its state changed; returns false to be removed (its
/// thread is gone). How other threads learn of a transition at once (see `on_transitions` in
/// the binding).
pub type TransitionHook = Box<dyn Fn(u32) -> bool + Send + Sync>;

static HOOKS: Mutex<Vec<TransitionHook>> = Mutex::new(Vec::new());

pub fn add_transition_hook(hook: TransitionHook) {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
}

fn notify(circuit_id: u32) {
    let mut hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    if !hooks.is_empty() {
        hooks.retain(|h| h(circuit_id));
    }
}

pub struct CircuitEntry {
    pub id: u32,
    /// Never reused (ids, being slots, are): tells a circuit from a later one in the same slot.
    pub serial: u64,
    pub name: Box<str>,
    pub slot: SlotRef,
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RegistryError {
    /// Same name, different numeric options.
    Conflict { option: &'static str, existing: String, requested: String },
    Invalid(String),
    /// The lane or circuit id is unknown (disposed, or never existed).
    Unknown,
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Conflict { option, existing, requested } => write!(
                f,
                "a circuit with this name already exists with {option} = {existing}; this breaker asks for {requested}. \
                 Use the same options, or another name"
            ),
            RegistryError::Invalid(m) => f.write_str(m),
            RegistryError::Unknown => f.write_str("unknown circuit or lane (was it disposed?)"),
        }
    }
}

pub struct Attached {
    pub circuit: SlotRef,
    pub lane: SlotRef,
    pub bucket_end: f64,
    pub created: bool,
    pub config: Config,
}

/// What a stats read returns.
pub struct FullStats {
    pub id: u32,
    pub serial: u64,
    pub name: String,
    pub stats: Stats,
    pub config: Config,
    pub transition_counts: [[u64; 3]; 3],
}

/// A registered circuit, found by its name: the set holds the entry alone, its key being the
/// entry's own name (a map from a copy of the name took 40 more bytes a circuit).
struct ByName(Arc<CircuitEntry>);

impl std::hash::Hash for ByName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // As `str` hashes: lookups by `&str` go through `Borrow<str>`.
        self.0.name.hash(h)
    }
}

impl PartialEq for ByName {
    fn eq(&self, o: &ByName) -> bool {
        self.0.name == o.0.name
    }
}

impl Eq for ByName {}

impl std::borrow::Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

#[derive(Default)]
struct Maps {
    by_name: HashSet<ByName>,
    /// Slot id → the circuit that holds the slot, as its own (`e.id == id`) or as one of its
    /// lanes. Slot ids are small and dense (the arena reuses them), so a vector indexed by
    /// them is smaller than a hash map and a lookup is an index, not a hash.
    by_slot: Vec<Option<Arc<CircuitEntry>>>,
}

impl Maps {
    fn slot(&self, id: u32) -> Option<&Arc<CircuitEntry>> {
        self.by_slot.get(id as usize).and_then(|e| e.as_ref())
    }

    fn set_slot(&mut self, id: u32, e: Option<Arc<CircuitEntry>>) {
        let i = id as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, None);
        }
        self.by_slot[i] = e;
    }
}

static MAPS: RwLock<Option<Maps>> = RwLock::new(None);
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn read<R>(f: impl FnOnce(&Maps) -> R) -> R {
    let g = MAPS.read().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(m) => f(m),
        None => f(&Maps::default()),
    }
}

fn write<R>(f: impl FnOnce(&mut Maps) -> R) -> R {
    let mut g = MAPS.write().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Maps::default))
}

fn lock(e: &CircuitEntry) -> MutexGuard<'_, Inner> {
    // A panic while the lock was held must not take the circuit down with it.
    e.inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl CircuitEntry {
    /// Folds every lane's pending counts into the machine.
    fn drain(&self, inner: &mut Inner, now: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        let time_window = matches!(inner.machine.config.window, WindowKind::Time { .. });
        for i in 0..inner.lanes.len() {
            let (slot, epoch) = (inner.lanes[i].slot.slot, inner.lanes[i].epoch_start);
            let at = if time_window { epoch } else { now };
            // A plain load first: most counters are 0 most of the time, and a swap is a locked
            // instruction (tens of ns) on the failure path.
            let take = |f: usize| {
                let c = slot.get(f);
                if c.load(Ordering::Relaxed) == 0 { 0 } else { c.swap(0, Ordering::AcqRel).max(0) as u64 }
            };
            // The order of a lane's batched successes and failures: the last failure was
            // counted when OK stood at FAIL_AT_OK; read before OK is taken.
            let fail_at_ok = slot.get(FAIL_AT_OK).load(Ordering::Acquire);
            let fails = take(FAIL);
            let ok = take(OK);
            let ignored = take(IGNORED);
            let rejected = take(REJECTED);
            let fallbacks = take(FALLBACK);
            let m = &mut inner.machine;
            m.counters.ignored += ignored;
            m.counters.rejections += rejected;
            m.counters.fallbacks += fallbacks;
            let head = slot.get(RING_HEAD).load(Ordering::Acquire);
            let tail = slot.get(RING_TAIL).load(Ordering::Relaxed);
            let n = (head.wrapping_sub(tail) as u32).min(RING_LEN as u32) as i32;
            for k in 0..n {
                let idx = (head.wrapping_sub(n).wrapping_add(k) as u32 as usize) % RING_LEN;
                let us = slot.get(RING + idx).load(Ordering::Relaxed).max(0) as u64;
                m.record_latency(at, us);
            }
            slot.get(RING_TAIL).store(head, Ordering::Release);
            let failures_last = fails > 0 && fail_at_ok as i64 >= ok as i64;
            if !failures_last {
                if let Some(t) = m.record_failure_batch(now, at, fails, slot.load_f64(LAST_FAIL) as u64, false) {
                    out.push(t);
                }
            }
            if let Some(t) = m.record_batch(now, at, ok) {
                out.push(t);
            }
            if failures_last {
                if let Some(t) = m.record_failure_batch(now, at, fails, slot.load_f64(LAST_FAIL) as u64, true) {
                    out.push(t);
                }
            }
            if fails > 0 {
                slot.get(FAIL_AT_OK).store(0, Ordering::Relaxed);
            }
        }
        out
    }

    /// Mirrors the machine into the shared slot. Called after every change, under the lock.
    fn publish(&self, inner: &mut Inner, now: u64) {
        let m = &mut inner.machine;
        let mode = if inner.disposed {
            MODE_DISPOSED
        } else {
            match m.state() {
                State::Closed if m.success_could_trip(now) => MODE_CLOSED_EAGER,
                State::Closed => MODE_CLOSED,
                State::Open if m.is_forced() => MODE_FORCED_OPEN,
                State::Open => MODE_OPEN,
                State::HalfOpen => MODE_HALF_OPEN,
            }
        };
        let next = match (m.state(), m.next_attempt_at()) {
            (State::Open, Some(at)) => at as f64,
            (State::Open, None) => f64::INFINITY,
            _ => 0.0,
        };
        // Less one per lane: a thread may have taken a unit and not yet counted its failure in
        // its lane when this drain ran (one at most: a lane belongs to one thread).
        let budget = if mode == MODE_CLOSED { m.failure_budget(now).saturating_sub(inner.lanes.len() as u32) } else { 0 };
        let s = self.slot.slot;
        s.get(BUDGET).store(budget as i32, Ordering::Release);
        s.store_f64(NEXT_ATTEMPT, next);
        s.get(SEQ).store(m.seq() as i32, Ordering::Release);
        // Release: whoever sees the new mode sees nextAttemptAt and seq written before it.
        s.get(MODE).store(mode, Ordering::Release);
        let seq = inner.machine.seq();
        if seq != inner.published_seq {
            inner.published_seq = seq;
            notify(self.id);
        }
    }

    /// Runs `f` on the machine with every lane drained first and the slot published after.
    fn with<R>(&self, now: u64, f: impl FnOnce(&mut Circuit, &mut Vec<LaneState>) -> R) -> R {
        let mut g = lock(self);
        let inner = &mut *g;
        self.drain(inner, now);
        inner.machine.refresh(now);
        let r = f(&mut inner.machine, &mut inner.lanes);
        self.publish(inner, now);
        r
    }
}

fn circuit_of_lane(lane: u32) -> Result<Arc<CircuitEntry>, RegistryError> {
    read(|m| m.slot(lane).filter(|e| e.id != lane).cloned()).ok_or(RegistryError::Unknown)
}

fn circuit(id: u32) -> Result<Arc<CircuitEntry>, RegistryError> {
    read(|m| m.slot(id).filter(|e| e.id == id).cloned()).ok_or(RegistryError::Unknown)
}

fn idle_ms(config: &Config) -> u64 {
    // The clock must stay awake across one bucket of calls that only bump counters.
    match config.window {
        WindowKind::Time { duration_ms, buckets } => (2 * duration_ms / buckets as u64).max(2_000),
        WindowKind::Count { .. } => 2_000,
    }
}

/// Attaches a new instance to the circuit `name`, creating the circuit if it does not exist,
/// with a lane of its own. `config: None` attaches to an existing circuit with whatever
/// options it has.
pub fn attach(name: &str, config: Option<Config>, now: u64) -> Result<Attached, RegistryError> {
    let (circuit, created, config) = attach_circuit(name, config, now)?;
    let (lane, bucket_end) = add_lane(circuit.id, now)?;
    Ok(Attached { circuit, lane, bucket_end, created, config })
}

/// Finds or creates the circuit `name` (see `attach`), without a lane.
pub fn attach_circuit(name: &str, config: Option<Config>, now: u64) -> Result<(SlotRef, bool, Config), RegistryError> {
    if let Some(c) = &config {
        c.validate().map_err(RegistryError::Invalid)?;
    }
    let (entry, created) = write(|m| -> Result<_, RegistryError> {
        if let Some(ByName(e)) = m.by_name.get(name) {
            if let Some(c) = &config {
                let g = lock(e);
                if let Some((option, existing, requested)) = g.machine.config.first_difference(c) {
                    return Err(RegistryError::Conflict { option, existing, requested });
                }
            }
            return Ok((e.clone(), false));
        }
        let Some(config) = config.clone() else { return Err(RegistryError::Unknown) };
        let slot = arena::alloc();
        let e = Arc::new(CircuitEntry {
            id: slot.id,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            slot,
            inner: Mutex::new(Inner { machine: Circuit::new(config, now), lanes: Vec::new(), disposed: false, published_seq: 0, store_taken: [0; 3] }),
        });
        m.by_name.insert(ByName(e.clone()));
        m.set_slot(slot.id, Some(e.clone()));
        Ok((e, true))
    })?;
    let config = {
        let mut g = lock(&entry);
        let inner = &mut *g;
        entry.publish(inner, now);
        inner.machine.config.clone()
    };
    ticker::start(idle_ms(&config));
    Ok((entry.slot, created, config))
}

/// A new lane for the circuit: where one thread's instances batch their counts. Returns the
/// lane and the end of its current time bucket.
pub fn add_lane(circuit_id: u32, now: u64) -> Result<(SlotRef, f64), RegistryError> {
    let entry = circuit(circuit_id)?;
    let lane = arena::alloc();
    let bucket_end = {
        let mut g = lock(&entry);
        let (start, end) = g.machine.window().bucket_bounds(now);
        // Most circuits have one lane (one thread): no spare capacity.
        g.lanes.reserve_exact(1);
        g.lanes.push(LaneState { slot: lane, epoch_start: start, probes: 0, probe_gen: 0 });
        end
    };
    write(|m| m.set_slot(lane.id, Some(entry.clone())));
    Ok((lane, bucket_end))
}

/// The lane's time bucket ended (or the clock was parked): fold its counts into the bucket they
/// belong to and start the next. Returns the new bucket's end (circuit-clock ms; +inf for counts).
pub fn flush(lane: u32, now: u64) -> Result<f64, RegistryError> {
    let e = circuit_of_lane(lane)?;
    Ok(e.with(now, |m, lanes| {
        let (start, end) = m.window().bucket_bounds(now);
        if let Some(l) = lanes.iter_mut().find(|l| l.slot.id == lane) {
            l.epoch_start = start;
        }
        end
    }))
}

/// Encodes a permit for JS: 0 = run, k > 0 = run as probe of generation k - 1, -1 = rejected.
pub fn acquire(lane: u32, now: u64) -> Result<i32, RegistryError> {
    let e = circuit_of_lane(lane)?;
    Ok(e.with(now, |m, lanes| match m.try_acquire(now).0 {
        Permit::Allowed => 0,
        Permit::Probe(gen) => {
            if let Some(l) = lanes.iter_mut().find(|l| l.slot.id == lane) {
                if l.probe_gen != gen {
                    l.probe_gen = gen;
                    l.probes = 0;
                }
                l.probes += 1;
            }
            gen as i32 + 1
        }
        Permit::Rejected { .. } => -1,
    }))
}

/// Records one outcome that the fast path could not batch. `probe` is what `acquire` returned.
pub fn settle(lane: u32, now: u64, outcome: Outcome, slow: bool, timeout: bool, probe: i32) -> Result<i32, RegistryError> {
    settle_from(lane, now, Settle { outcome, slow, timeout, probe, admitted: None, metrics_only: false })
}

/// One outcome, with what `Circuit::record_from` needs to know of its call.
#[derive(Clone, Copy, Debug)]
pub struct Settle {
    pub outcome: Outcome,
    pub slow: bool,
    pub timeout: bool,
    /// What `acquire` returned (0: not a probe).
    pub probe: i32,
    /// The circuit's transition sequence number (low 32 bits) when the call was let through.
    pub admitted: Option<u32>,
    /// An outcome of a metrics-only (`enabled: false`) instance.
    pub metrics_only: bool,
}

pub fn settle_from(lane: u32, now: u64, s: Settle) -> Result<i32, RegistryError> {
    let e = circuit_of_lane(lane)?;
    e.with(now, |m, lanes| {
        let probe = if s.probe > 0 { Some((s.probe - 1) as u32) } else { None };
        if let Some(gen) = probe {
            if let Some(l) = lanes.iter_mut().find(|l| l.slot.id == lane && l.probe_gen == gen) {
                l.probes = l.probes.saturating_sub(1);
            }
        }
        m.record_from(now, s.outcome, s.slow, s.timeout, probe, s.admitted, s.metrics_only);
    });
    Ok(e.slot.slot.get(MODE).load(Ordering::Acquire))
}

/// Latency of one call measured outside the ring (a slow-path outcome), in µs.
pub fn record_latency(lane: u32, now: u64, us: u64) -> Result<(), RegistryError> {
    let e = circuit_of_lane(lane)?;
    e.with(now, |m, _| m.record_latency(now, us));
    Ok(())
}

/// The window and consecutive counts, for a user's `shouldTrip(counts)`.
pub fn counts(lane: u32, now: u64) -> Result<(Totals, u64, u64), RegistryError> {
    let e = circuit_of_lane(lane)?;
    Ok(e.with(now, |m, _| {
        let s = m.stats(now);
        (m.voting_totals(now), s.consecutive_failures, s.consecutive_successes)
    }))
}

/// Opens the circuit because the user's predicate said so.
pub fn trip(lane: u32, now: u64) -> Result<(), RegistryError> {
    let e = circuit_of_lane(lane)?;
    e.with(now, |m, _| m.trip(now));
    Ok(())
}

#[derive(Clone, Copy, Debug)]
pub enum Control {
    Open(Option<u64>),
    Close,
    HalfOpen,
    Reset,
    /// A state from a snapshot: (state, forced, nextAttemptAt).
    Restore(State, bool, Option<u64>),
    /// Another instance's decision, read from a store: (state, forced, nextAttemptAt).
    FromStore(State, bool, Option<u64>),
    /// Trip for a reason decided outside the machine (the fleet's counts).
    Trip(Reason),
}

pub fn control(circuit_id: u32, now: u64, op: Control) -> Result<(), RegistryError> {
    let e = circuit(circuit_id)?;
    e.with(now, |m, _| match op {
        Control::Open(d) => m.force_open(now, d),
        Control::Close => m.close(now),
        Control::HalfOpen => m.half_open(now),
        Control::Reset => m.reset(now),
        Control::Restore(s, f, at) => m.restore(now, s, f, at),
        Control::FromStore(s, f, at) => m.apply(now, s, f, at, Reason::Store),
        Control::Trip(r) => m.trip_for(now, r),
    });
    Ok(())
}

/// This process's [calls, failures, slow calls] since the previous take, for a store that
/// merges every instance's counts. One baseline per circuit, so threads that each sync the
/// circuit never count a call twice. A reset (counters back to 0) restarts the baseline.
pub fn take_counts(circuit_id: u32, now: u64) -> Result<[u64; 3], RegistryError> {
    let e = circuit(circuit_id)?;
    let mut g = lock(&e);
    let inner = &mut *g;
    e.drain(inner, now);
    let c = inner.machine.counters;
    // Outcomes that vote nowhere here (metrics-only instances, earlier generations) do not
    // vote in the fleet's window either.
    let nv = inner.machine.non_voting;
    let cur = [(c.successes + c.failures).saturating_sub(nv[0]), c.failures.saturating_sub(nv[1]), c.slow.saturating_sub(nv[2])];
    let base = &mut inner.store_taken;
    let mut out = [0u64; 3];
    for i in 0..3 {
        out[i] = if cur[i] >= base[i] { cur[i] - base[i] } else { cur[i] };
        base[i] = cur[i];
    }
    e.publish(inner, now);
    Ok(out)
}

pub fn stats(circuit_id: u32, now: u64) -> Result<FullStats, RegistryError> {
    let e = circuit(circuit_id)?;
    Ok(e.with(now, |m, _| FullStats {
        id: e.id,
        serial: e.serial,
        name: e.name.to_string(),
        stats: m.stats(now),
        config: m.config.clone(),
        transition_counts: m.transition_counts(),
    }))
}

/// The circuit's latency histogram since creation or reset (Prometheus's cumulative view).
pub fn lifetime_latency(circuit_id: u32, now: u64) -> Result<crate::histogram::Histogram, RegistryError> {
    let e = circuit(circuit_id)?;
    Ok(e.with(now, |m, _| m.lifetime_latency()))
}

/// Calls `f` with the stats of every registered circuit, in id order, taking the registry's
/// lock once (a stats read of a thousand circuits must stay well under a millisecond).
pub fn each_stats(now: u64, mut f: impl FnMut(&CircuitEntry, &Stats, &Config, &[[u64; 3]; 3])) {
    let mut all: Vec<Arc<CircuitEntry>> = read(|m| m.by_name.iter().map(|e| e.0.clone()).collect());
    all.sort_unstable_by_key(|e| e.id);
    for e in all {
        let mut g = lock(&e);
        let inner = &mut *g;
        e.drain(inner, now);
        inner.machine.refresh(now);
        let st = inner.machine.stats(now);
        e.publish(inner, now);
        f(&e, &st, &inner.machine.config, &inner.machine.transition_counts());
    }
}

/// Every registered circuit's id, oldest first.
pub fn ids() -> Vec<u32> {
    let mut v: Vec<u32> = read(|m| m.by_name.iter().map(|e| e.0.id).collect());
    v.sort_unstable();
    v
}

pub fn id_of(name: &str) -> Option<u32> {
    read(|m| m.by_name.get(name).map(|e| e.0.id))
}

pub fn transitions_since(circuit_id: u32, since: u64) -> Result<Vec<Transition>, RegistryError> {
    let e = circuit(circuit_id)?;
    let g = lock(&e);
    Ok(g.machine.transitions_since(since).copied().collect())
}

/// The instance behind `lane` is gone: keep its counts, free its slot.
pub fn detach(lane: u32, now: u64) -> Result<(), RegistryError> {
    let e = circuit_of_lane(lane)?;
    let freed = {
        let mut g = lock(&e);
        let inner = &mut *g;
        e.drain(inner, now);
        let pos = inner.lanes.iter().position(|l| l.slot.id == lane);
        let slot = pos.map(|p| {
            let l = inner.lanes.remove(p);
            // Probes still held by a lane that goes away will never settle: give them back,
            // or the circuit would stay HALF_OPEN with no probe running.
            if l.probes > 0 {
                inner.machine.release_probes(l.probe_gen, l.probes);
            }
            l.slot
        });
        e.publish(inner, now);
        (slot, inner.disposed && inner.lanes.is_empty())
    };
    write(|m| {
        m.set_slot(lane, None);
        if freed.1 {
            m.set_slot(e.id, None);
        }
    });
    if let Some(s) = freed.0 {
        arena::free(s);
    }
    if freed.1 {
        arena::free(e.slot);
    }
    Ok(())
}

/// Removes the circuit from the registry. Instances still attached see it as disposed.
pub fn dispose(circuit_id: u32, now: u64) -> Result<(), RegistryError> {
    let e = circuit(circuit_id)?;
    {
        let mut g = lock(&e);
        let inner = &mut *g;
        inner.disposed = true;
        e.publish(inner, now);
    }
    write(|m| {
        if m.by_name.get(&*e.name).map(|x| x.0.id) == Some(e.id) {
            m.by_name.remove(&*e.name);
        }
    });
    Ok(())
}

pub fn reset_all(now: u64) {
    let all: Vec<Arc<CircuitEntry>> = read(|m| m.by_name.iter().map(|e| e.0.clone()).collect());
    for e in all {
        e.with(now, |m, _| m.reset(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config { minimum_requests: 4, window: WindowKind::Count { size: 10 }, ..Config::default() }
    }

    #[test]
    fn same_name_attaches_and_conflicts_name_the_option() {
        let a = attach("reg-a", Some(cfg()), 0).unwrap();
        let b = attach("reg-a", Some(cfg()), 0).unwrap();
        assert_eq!(a.circuit.id, b.circuit.id);
        assert!(a.created && !b.created);
        let other = Config { failure_threshold: 0.3, ..cfg() };
        match attach("reg-a", Some(other), 0) {
            Err(RegistryError::Conflict { option, .. }) => assert_eq!(option, "failureThreshold"),
            _ => panic!("expected a conflict"),
        }
    }

    #[test]
    fn lanes_are_drained_before_a_failure_decides() {
        let a = attach("reg-b", Some(cfg()), 0).unwrap();
        let b = attach("reg-b", Some(cfg()), 0).unwrap();
        // six successes batched in lane a, then four failures through lane b: 4/10 < 0.5
        a.lane.slot.get(OK).fetch_add(6, Ordering::Relaxed);
        for _ in 0..4 {
            settle(b.lane.id, 1, Outcome::Failure, false, false, 0).unwrap();
        }
        let s = stats(a.circuit.id, 2).unwrap().stats;
        assert_eq!(s.state, State::Closed);
        assert_eq!(s.window.calls, 10);
        assert_eq!(s.counters.successes, 6);
        // one more failure: the count window drops a success, 5/10 >= 0.5
        settle(b.lane.id, 3, Outcome::Failure, false, false, 0).unwrap();
        assert_eq!(a.circuit.slot.get(MODE).load(Ordering::SeqCst), MODE_OPEN);
        assert_eq!(a.circuit.slot.load_f64(NEXT_ATTEMPT), 3.0 + 60_000.0);
    }

    #[test]
    fn eager_mode_when_a_success_could_trip() {
        let a = attach("reg-c", Some(cfg()), 0).unwrap();
        for _ in 0..2 {
            settle(a.lane.id, 0, Outcome::Failure, false, false, 0).unwrap();
        }
        // 2 failures, minimum 4: two more successes would make 2/4 = 50% → report at once
        assert_eq!(a.circuit.slot.get(MODE).load(Ordering::SeqCst), MODE_CLOSED_EAGER);
        settle(a.lane.id, 0, Outcome::Success, false, false, 0).unwrap();
        settle(a.lane.id, 0, Outcome::Success, false, false, 0).unwrap();
        assert_eq!(a.circuit.slot.get(MODE).load(Ordering::SeqCst), MODE_OPEN);
    }

    #[test]
    fn dispose_marks_the_slot_and_frees_the_name() {
        let a = attach("reg-d", Some(cfg()), 0).unwrap();
        dispose(a.circuit.id, 0).unwrap();
        assert_eq!(a.circuit.slot.get(MODE).load(Ordering::SeqCst), MODE_DISPOSED);
        assert!(id_of("reg-d").is_none());
        let b = attach("reg-d", Some(cfg()), 0).unwrap();
        assert_ne!(a.circuit.id, b.circuit.id);
        detach(a.lane.id, 0).unwrap();
    }
}
