//! The N-API binding: one thin layer of free functions over `breakwater-core`.
//!
//! Free functions with small integer arguments, because they are the cheapest thing to call
//! from JavaScript (a class method costs about twice as much), and none of them is on the
//! success path of `execute`: that path reads shared memory (`chunk`) instead. Every function
//! catches panics, so a bug here becomes a JavaScript `Error`, never a crashed process.
//!
//! This file is not the public API: `index.js` is. Names here are what that layer needs.

use breakwater_core::arena::{self, layout};
use breakwater_core::registry::{self, Control, RegistryError};
use breakwater_core::ticker;
use breakwater_core::{Backoff, Config, Outcome, Reason, State, WindowKind};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

fn js_err(e: RegistryError) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

/// The numeric options of a circuit, already validated and defaulted by the JS layer.
#[napi(object)]
#[derive(Clone)]
pub struct CircuitOptions {
    pub failure_threshold: f64,
    pub minimum_requests: u32,
    pub consecutive_failures: u32,
    pub slow_call_duration_ms: f64,
    pub slow_call_rate_threshold: f64,
    pub timeout: f64,
    pub reset_timeout: f64,
    pub half_open_max_requests: u32,
    pub success_threshold: u32,
    pub half_open_timeout: f64,
    /// `"count"` or `"time"`.
    pub window_type: String,
    pub window_size: u32,
    pub window_duration_ms: f64,
    pub window_buckets: u32,
    /// `resetBackoff`, all three or none (the JS layer fills in the defaults).
    pub reset_backoff_multiplier: Option<f64>,
    pub reset_backoff_max_ms: Option<f64>,
    pub reset_backoff_jitter: Option<f64>,
}

impl CircuitOptions {
    fn to_config(&self) -> Result<Config> {
        let window = match self.window_type.as_str() {
            "count" => WindowKind::Count { size: self.window_size },
            "time" => WindowKind::Time { duration_ms: self.window_duration_ms as u64, buckets: self.window_buckets },
            other => return Err(Error::new(Status::InvalidArg, format!("window.type must be 'count' or 'time', got {other:?}"))),
        };
        Ok(Config {
            failure_threshold: self.failure_threshold,
            minimum_requests: self.minimum_requests,
            consecutive_failures: self.consecutive_failures,
            slow_call_duration_ms: self.slow_call_duration_ms,
            slow_call_rate_threshold: self.slow_call_rate_threshold,
            timeout_ms: self.timeout,
            reset_timeout_ms: self.reset_timeout as u64,
            half_open_max_requests: self.half_open_max_requests,
            success_threshold: self.success_threshold,
            half_open_timeout_ms: self.half_open_timeout as u64,
            window,
            reset_backoff: match (self.reset_backoff_multiplier, self.reset_backoff_max_ms, self.reset_backoff_jitter) {
                (Some(multiplier), Some(max_ms), Some(jitter)) => Some(Backoff { multiplier, max_ms: max_ms as u64, jitter }),
                _ => None,
            },
        })
    }

    fn from_config(c: &Config) -> CircuitOptions {
        let (window_type, window_size, window_duration_ms, window_buckets) = match c.window {
            WindowKind::Count { size } => ("count", size, 0.0, 0),
            WindowKind::Time { duration_ms, buckets } => ("time", 0, duration_ms as f64, buckets),
        };
        CircuitOptions {
            failure_threshold: c.failure_threshold,
            minimum_requests: c.minimum_requests,
            consecutive_failures: c.consecutive_failures,
            slow_call_duration_ms: c.slow_call_duration_ms,
            slow_call_rate_threshold: c.slow_call_rate_threshold,
            timeout: c.timeout_ms,
            reset_timeout: c.reset_timeout_ms as f64,
            half_open_max_requests: c.half_open_max_requests,
            success_threshold: c.success_threshold,
            half_open_timeout: c.half_open_timeout_ms as f64,
            window_type: window_type.into(),
            window_size,
            window_duration_ms,
            window_buckets,
            reset_backoff_multiplier: c.reset_backoff.map(|b| b.multiplier),
            reset_backoff_max_ms: c.reset_backoff.map(|b| b.max_ms as f64),
            reset_backoff_jitter: c.reset_backoff.map(|b| b.jitter),
        }
    }
}

/// Where an instance finds its circuit in shared memory.
#[napi(object)]
pub struct Attachment {
    pub circuit_id: u32,
    pub circuit_chunk: u32,
    pub circuit_base: u32,
    pub created: bool,
    pub options: CircuitOptions,
}

/// Attaches to the circuit `name` (creating it with `options`), or, without options, to an
/// existing circuit with whatever options it has.
#[napi(catch_unwind)]
pub fn attach(name: String, options: Option<CircuitOptions>) -> Result<Attachment> {
    let config = options.map(|o| o.to_config()).transpose()?;
    let (c, created, config) = registry::attach_circuit(&name, config, ticker::touch()).map_err(js_err)?;
    Ok(Attachment {
        circuit_id: c.id,
        circuit_chunk: c.chunk(),
        circuit_base: c.base(),
        created,
        options: CircuitOptions::from_config(&config),
    })
}

/// Where a thread's instances of one circuit batch their counts.
#[napi(object)]
pub struct Lane {
    pub lane_id: u32,
    pub lane_chunk: u32,
    pub lane_base: u32,
    /// End of the lane's current time bucket, circuit-clock ms (+inf for a count window).
    pub bucket_end: f64,
}

/// A new lane for circuit `circuit` (one per thread and circuit; see lib/breaker.js).
#[napi(catch_unwind)]
pub fn new_lane(env: &Env, circuit: u32) -> Result<Lane> {
    let (l, bucket_end) = registry::add_lane(circuit, ticker::touch()).map_err(js_err)?;
    env_lanes::add(env, l.id);
    Ok(Lane { lane_id: l.id, lane_chunk: l.chunk(), lane_base: l.base(), bucket_end })
}

/// The lanes of each JavaScript environment (the main thread, each worker), so that they are
/// detached when it goes away. JS detaches a lane when its last instance is collected, but a
/// FinalizationRegistry never runs at thread exit: without this, a worker that exits or is
/// terminated while holding a HALF_OPEN probe would leave the circuit HALF_OPEN for good.
mod env_lanes {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// env (as an address) → its lanes
    static LANES: Mutex<Option<HashMap<usize, Vec<u32>>>> = Mutex::new(None);

    fn with<R>(f: impl FnOnce(&mut HashMap<usize, Vec<u32>>) -> R) -> R {
        let mut g = LANES.lock().unwrap_or_else(|e| e.into_inner());
        f(g.get_or_insert_with(HashMap::new))
    }

    pub fn add(env: &Env, lane: u32) {
        let key = env.raw() as usize;
        let first = with(|m| {
            let v = m.entry(key).or_default();
            v.push(lane);
            v.len() == 1
        });
        if first {
            // Runs when the environment is torn down: worker exit, worker.terminate(),
            // process exit. If it cannot be registered, lanes are still detached by the GC.
            let _ = env.add_env_cleanup_hook(key, release);
        }
    }

    /// The environment `key` is going away: detach its lanes (their counts stay with the
    /// circuits, their probe permits are given back).
    fn release(key: usize) {
        let lanes = with(|m| m.remove(&key)).unwrap_or_default();
        let now = ticker::touch();
        for lane in lanes {
            let _ = std::panic::catch_unwind(|| registry::detach(lane, now));
        }
    }

    pub fn remove(env: &Env, lane: u32) {
        let key = env.raw() as usize;
        with(|m| {
            if let Some(v) = m.get_mut(&key) {
                v.retain(|&l| l != lane);
            }
        });
    }
}

/// Maps chunk `index` of the shared arena as an Int32Array. The memory lives as long as the
/// process, so the finalizer has nothing to free.
#[napi(catch_unwind)]
pub fn chunk<'env>(env: &'env Env, index: u32) -> Result<Int32ArraySlice<'env>> {
    let (ptr, len) = arena::chunk(index)
        .ok_or_else(|| Error::new(Status::InvalidArg, format!("no shared-memory chunk {index}")))?;
    let view = unsafe { Int32ArraySlice::from_external(env, ptr, len, (), |_, _| {}) }?;
    // Where the engine forbids external memory (a V8 sandbox), napi-rs silently copies: the
    // view would then be a snapshot, and the breaker would count into nothing. Refuse.
    if view.as_ptr() != ptr as *const i32 {
        return Err(Error::new(
            Status::GenericFailure,
            "this JavaScript engine copies external buffers (V8 sandbox); breakwater needs shared memory and cannot run here",
        ));
    }
    Ok(view)
}

/// The shared-memory layout and sizes, so the JS layer never hard-codes them.
#[napi(catch_unwind)]
pub fn layout() -> Vec<u32> {
    vec![
        arena::SLOT_I32 as u32,
        arena::SLOTS_PER_CHUNK as u32,
        layout::CLOCK_F64 as u32,
        layout::MODE as u32,
        layout::NEXT_ATTEMPT as u32,
        layout::SEQ as u32,
        layout::OK as u32,
        layout::IGNORED as u32,
        layout::REJECTED as u32,
        layout::FALLBACK as u32,
        layout::RING_HEAD as u32,
        layout::RING_TAIL as u32,
        layout::RING as u32,
        layout::RING_LEN as u32,
        STATS_LEN as u32,
        layout::BUDGET as u32,
        layout::FAIL as u32,
        layout::FAIL_AT_OK as u32,
        layout::LAST_FAIL as u32,
    ]
}

/// The instance's time bucket ended: fold its batched counts. Returns the next bucket's end.
#[napi(catch_unwind)]
pub fn flush(lane: u32) -> Result<f64> {
    registry::flush(lane, ticker::touch()).map_err(js_err)
}

/// Asks to run one call outside the CLOSED fast path: 0 run, k > 0 run as probe k, -1 rejected.
#[napi(catch_unwind)]
pub fn acquire(lane: u32) -> Result<i32> {
    registry::acquire(lane, ticker::touch()).map_err(js_err)
}

/// Records one outcome. `kind`: 0 success, 1 failure, 2 ignored, 3 not run (a probe the
/// store's fleet-wide permit turned away); +4 slow; +8 timeout; +16 metrics only (an
/// `enabled: false` instance: recorded, decides nothing).
/// `probe` is what `acquire` returned; `admitted`, the circuit's sequence word when the call
/// was let through (its generation). Returns the new mode word.
#[napi(catch_unwind)]
pub fn settle(lane: u32, kind: u32, probe: i32, admitted: Option<i32>) -> Result<i32> {
    let outcome = match kind & 3 {
        0 => Outcome::Success,
        1 => Outcome::Failure,
        2 => Outcome::Ignored,
        _ => Outcome::NotRun,
    };
    let s = registry::Settle {
        outcome,
        slow: kind & 4 != 0,
        timeout: kind & 8 != 0,
        probe,
        admitted: admitted.map(|a| a as u32),
        metrics_only: kind & 16 != 0,
    };
    registry::settle_from(lane, ticker::touch(), s).map_err(js_err)
}

/// A latency sample measured on a slow path, in microseconds.
#[napi(catch_unwind)]
pub fn record_latency(lane: u32, us: f64) -> Result<()> {
    registry::record_latency(lane, ticker::touch(), us.max(0.0) as u64).map_err(js_err)
}

/// [calls, failures, successes, slowCalls, consecutiveFailures, consecutiveSuccesses]
#[napi(catch_unwind)]
pub fn counts(lane: u32) -> Result<Vec<f64>> {
    let (t, cf, cs) = registry::counts(lane, ticker::touch()).map_err(js_err)?;
    Ok(vec![t.calls as f64, t.failures as f64, t.successes as f64, t.slow as f64, cf as f64, cs as f64])
}

/// Opens a CLOSED circuit because the user's `shouldTrip` said so.
#[napi(catch_unwind)]
pub fn trip(lane: u32) -> Result<()> {
    registry::trip(lane, ticker::touch()).map_err(js_err)
}

/// 0 open (arg: duration ms, or < 0 for forced), 1 close, 2 half-open, 3 reset.
#[napi(catch_unwind)]
pub fn control(circuit: u32, op: u32, arg: f64) -> Result<()> {
    let op = match op {
        0 => Control::Open(if arg >= 0.0 { Some(arg as u64) } else { None }),
        1 => Control::Close,
        2 => Control::HalfOpen,
        3 => Control::Reset,
        _ => return Err(Error::new(Status::InvalidArg, format!("unknown control op {op}"))),
    };
    registry::control(circuit, ticker::touch(), op).map_err(js_err)
}

fn state_of(state: u32) -> Result<State> {
    Ok(match state {
        0 => State::Closed,
        1 => State::Open,
        2 => State::HalfOpen,
        _ => return Err(Error::new(Status::InvalidArg, format!("unknown state {state}"))),
    })
}

/// A snapshot's epoch-ms `nextAttemptAt` on the circuit clock (None for none: NaN, 0, < 0).
fn circuit_moment(epoch: f64) -> Option<u64> {
    if epoch.is_finite() && epoch > 0.0 { Some(ticker::from_wall(epoch as u64)) } else { None }
}

/// Puts a circuit in a saved state: `state` 0 closed, 1 open, 2 half-open; `next_attempt_at`
/// in epoch ms.
#[napi(catch_unwind)]
pub fn restore(circuit: u32, state: u32, forced: bool, next_attempt_at: f64) -> Result<()> {
    let s = state_of(state)?;
    let at = circuit_moment(next_attempt_at);
    registry::control(circuit, ticker::touch(), Control::Restore(s, forced, at)).map_err(js_err)
}

/// Applies another instance's decision read from a store (`state` as in `restore`); the
/// transition's reason is `store`, so the store layer does not publish it back.
#[napi(catch_unwind)]
pub fn store_apply(circuit: u32, state: u32, forced: bool, next_attempt_at: f64) -> Result<()> {
    let s = state_of(state)?;
    let at = circuit_moment(next_attempt_at);
    registry::control(circuit, ticker::touch(), Control::FromStore(s, forced, at)).map_err(js_err)
}

/// Trips a CLOSED circuit on the fleet's counts: `slow` false for the failure rate, true for
/// the slow-call rate.
#[napi(catch_unwind)]
pub fn store_trip(circuit: u32, slow: bool) -> Result<()> {
    let r = if slow { Reason::FleetSlowCallRate } else { Reason::FleetFailureRate };
    registry::control(circuit, ticker::touch(), Control::Trip(r)).map_err(js_err)
}

/// This process's [calls, failures, slowCalls] since the previous take (for a store that
/// merges every instance's counts).
#[napi(catch_unwind)]
pub fn take_counts(circuit: u32) -> Result<Vec<f64>> {
    let c = registry::take_counts(circuit, ticker::touch()).map_err(js_err)?;
    Ok(c.iter().map(|&x| x as f64).collect())
}

const STATS_LEN: usize = 44;

/// Rounded to 3 decimals, as the stats report them. Rates and latencies are finite and not
/// negative; the cast (saturating) stands in for `round`, a libm call on baseline x86-64 that
/// took 4% of a stats read.
fn r3(x: f64) -> f64 {
    ((x * 1000.0 + 0.5) as u64) as f64 / 1000.0
}

/// A moment on the circuit clock as epoch ms, given `ticker::wall_offset()` (read once per call).
fn wall(off: i64, t: u64) -> f64 {
    ticker::shift(t, off) as f64
}

fn opt(off: i64, v: Option<u64>) -> f64 {
    v.map(|x| wall(off, x)).unwrap_or(f64::NAN)
}

/// Moments go out as epoch ms (`off`: see `wall`); durations as they are.
fn push_stats(out: &mut Vec<f64>, off: i64, id: u32, serial: u64, st: &breakwater_core::Stats, config: &Config, transition_counts: &[[u64; 3]; 3]) {
    let c = &st.counters;
    let l = &st.latency;
    let start = out.len();
    out.extend_from_slice(&[
        st.state as u32 as f64,
        st.forced as u32 as f64,
        c.successes as f64,
        c.failures as f64,
        c.rejections as f64,
        c.timeouts as f64,
        c.fallbacks as f64,
        c.ignored as f64,
        c.slow as f64,
        st.window.calls as f64,
        st.window.failures as f64,
        st.window.successes as f64,
        st.window.slow as f64,
        r3(st.failure_rate),
        r3(st.slow_call_rate),
        st.consecutive_failures as f64,
        st.consecutive_successes as f64,
        r3(l.mean_ms),
        r3(l.p50_ms),
        r3(l.p90_ms),
        r3(l.p99_ms),
        r3(l.max_ms),
        opt(off, st.last_failure_at),
        opt(off, st.last_success_at),
        wall(off, st.state_changed_at),
        opt(off, st.next_attempt_at),
        st.retry_after_ms.map(|x| x as f64).unwrap_or(f64::NAN),
        config.failure_threshold,
        config.minimum_requests as f64,
        config.timeout_ms,
        config.reset_timeout_ms as f64,
        l.count as f64,
        st.probes_in_flight as f64,
    ]);
    for row in transition_counts {
        for n in row {
            out.push(*n as f64);
        }
    }
    out.push(id as f64);
    out.push(serial as f64);
    debug_assert_eq!(out.len() - start, STATS_LEN);
}

/// One circuit's stats, `STATS_LEN` numbers written into `out` (a buffer the caller keeps; the
/// JS layer names the fields). Not a new array per call: each was a malloc'd backing store held
/// until the next GC, and reading 10,000 circuits' stats one by one left ~1.3 KB of RSS per
/// circuit in freed-but-scattered malloc chunks.
#[napi(catch_unwind)]
pub fn stats_into(circuit: u32, mut out: Float64ArraySlice) -> Result<()> {
    let s = registry::stats(circuit, ticker::touch()).map_err(js_err)?;
    let mut v = Vec::with_capacity(STATS_LEN);
    push_stats(&mut v, ticker::wall_offset(), s.id, s.serial, &s.stats, &s.config, &s.transition_counts);
    // Safety: the JS thread that owns `out` is inside this call; nothing else writes it.
    let dst = unsafe { out.as_mut() };
    match dst.get_mut(..STATS_LEN) {
        Some(d) => {
            d.copy_from_slice(&v);
            Ok(())
        }
        None => Err(Error::new(Status::InvalidArg, format!("statsInto: the buffer holds {} numbers, {} needed", dst.len(), STATS_LEN))),
    }
}

/// Every registered circuit's stats in one call: `STATS_LEN` numbers each, the circuit's id
/// and serial last (the JS layer knows names by id; `name_of` tells it the ones it does not).
/// Written straight into a buffer the caller keeps (a new 350 KB array per call for 1,000
/// circuits was half the cost of getAllCircuitBreakerStats). Returns how many numbers the rows
/// take; if that is more than `out` holds, the rows that did not fit are left out and the
/// caller grows `out` and asks again.
#[napi(catch_unwind)]
pub fn all_stats_into(mut out: Float64ArraySlice) -> u32 {
    // Safety: the JS thread that owns `out` is inside this call; nothing else writes it.
    let dst = unsafe { out.as_mut() };
    let mut row = Vec::with_capacity(STATS_LEN);
    let mut len = 0usize;
    let off = ticker::wall_offset();
    registry::each_stats(ticker::touch(), |e, st, config, tc| {
        row.clear();
        push_stats(&mut row, off, e.id, e.serial, st, config, tc);
        if let Some(d) = dst.get_mut(len..len + STATS_LEN) {
            d.copy_from_slice(&row);
        }
        len += STATS_LEN;
    });
    len as u32
}

#[napi(object)]
pub struct CircuitName {
    pub serial: f64,
    pub name: String,
}

/// The name (and serial) of circuit `id`, if it is registered.
#[napi(catch_unwind)]
pub fn name_of(id: u32) -> Option<CircuitName> {
    registry::stats(id, ticker::touch()).ok().map(|s| CircuitName { serial: s.serial as f64, name: s.name })
}

/// Cumulative latency histograms of every circuit since creation or reset, for Prometheus:
/// per circuit `[count, sumMicros, bin0 … bin127]`, in the order of `allStatsInto`. The counts
/// are 64-bit (they never wrap: Prometheus reads a drop as a reset); as f64 they are exact up
/// to 2^53 samples, centuries of a busy circuit, and stay monotonic beyond.
#[napi(catch_unwind)]
pub fn all_latency() -> Float64Array {
    let now = ticker::touch();
    let mut out = Vec::new();
    for id in registry::ids() {
        if let Ok(h) = registry::lifetime_latency(id, now) {
            let h = &h;
            out.push(h.count() as f64);
            out.push(h.sum_us() as f64);
            out.extend(h.bins().iter().map(|n| n as f64));
        }
    }
    Float64Array::new(out)
}

/// Exclusive upper edges of the latency histogram's bins, in microseconds.
#[napi(catch_unwind)]
pub fn latency_bin_edges() -> Vec<f64> {
    (0..breakwater_core::histogram::BINS).map(|b| breakwater_core::histogram::bin_upper_us(b) as f64).collect()
}

/// Transitions after `since`: flat [seq, from, to, reason, atMs (epoch)] rows; reasons by
/// index into `reasons()`.
#[napi(catch_unwind)]
pub fn transitions(circuit: u32, since: f64) -> Result<Vec<f64>> {
    let ts = registry::transitions_since(circuit, since.max(0.0) as u64).map_err(js_err)?;
    let off = ticker::wall_offset();
    Ok(ts
        .iter()
        .flat_map(|t| [t.seq as f64, t.from as u32 as f64, t.to as u32 as f64, t.reason as u32 as f64, wall(off, t.at_ms)])
        .collect())
}

/// The names of transition reasons, by index.
#[napi(catch_unwind)]
pub fn reasons() -> Vec<String> {
    use breakwater_core::Reason::*;
    [
        FailureRate, ConsecutiveFailures, SlowCallRate, Predicate, ResetTimeoutElapsed, ProbeSucceeded, ProbeFailed,
        HalfOpenTimeout, ForcedOpen, ManualOpen, ManualClose, ManualHalfOpen, Reset, Restored, Store, FleetFailureRate,
        FleetSlowCallRate,
    ]
    .iter()
    .map(|r| r.name().to_string())
    .collect()
}

/// The instance behind `lane` is gone; its counts stay with the circuit.
#[napi(catch_unwind)]
pub fn detach(env: &Env, lane: u32) -> Result<()> {
    env_lanes::remove(env, lane);
    registry::detach(lane, ticker::touch()).map_err(js_err)
}

/// Removes a circuit from the registry.
#[napi(catch_unwind)]
pub fn dispose(circuit: u32) -> Result<()> {
    registry::dispose(circuit, ticker::touch()).map_err(js_err)
}

#[napi(catch_unwind)]
pub fn reset_all() {
    registry::reset_all(ticker::touch())
}

/// The id of the circuit registered under `name`, if any.
#[napi(catch_unwind)]
pub fn id_of(name: String) -> Option<u32> {
    registry::id_of(&name)
}

/// The circuit clock now (ms, monotonic; not epoch: see ticker.rs); also wakes the coarse
/// clock if it was parked.
#[napi(catch_unwind)]
pub fn now() -> f64 {
    ticker::touch() as f64
}

/// Epoch ms minus circuit-clock ms (stable between wall-clock steps): a circuit-clock moment
/// read from shared memory (`nextAttemptAt`) plus this is the epoch ms the stats report.
#[napi(catch_unwind)]
pub fn wall_offset() -> f64 {
    ticker::wall_offset() as f64
}

/// Registers this thread's transition callback: called (in this thread, soon) with a circuit's
/// id whenever that circuit changes state, whichever thread changed it. Weak: it never keeps
/// the process alive.
#[napi(catch_unwind)]
pub fn on_transitions(callback: ThreadsafeFunction<u32, Unknown<'static>, u32, Status, false, true>) {
    registry::add_transition_hook(Box::new(move |id| {
        callback.call(id, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
    }));
}

/// For the test suite: proves that a panic in native code becomes a JS error.
#[napi(catch_unwind)]
pub fn __panic_for_test() {
    panic!("breakwater: deliberate panic (test)");
}
