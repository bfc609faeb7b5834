//! A coarse clock in shared memory, so the hot path can tell which time bucket a call falls in
//! by reading one f64 (~1 ns) instead of calling `Date.now()` (~60 ns here).
//!
//! One thread per process writes the time every `TICK_MS`. It is not a timer in the event
//! loop (a process with circuits still exits by itself) and it costs no CPU when idle: when no
//! native entry point has been called for `idle_ms`, it writes +inf and parks. +inf makes
//! every reader's "has the bucket ended?" test true, so the next call crosses into native
//! code, which wakes the thread and writes the real time at once.

use crate::arena::{self, layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const TICK_MS: u64 = 5;

/// Wall-clock epoch milliseconds (what `Date.now()` returns).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Ticker {
    last_demand: AtomicU64,
    idle_ms: AtomicU64,
    parked: AtomicBool,
    /// False if the thread could not be started: the clock then stays +inf for good.
    alive: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

static TICKER: OnceLock<Ticker> = OnceLock::new();

fn write_clock(v: f64) {
    arena::process_slot().store_f64(layout::CLOCK_F64 * 2, v);
}

/// Starts the thread if it is not running, and keeps it awake at least `idle_ms` after the
/// latest `touch` (the largest value asked for wins).
pub fn start(idle_ms: u64) {
    let mut first = false;
    let t = TICKER.get_or_init(|| {
        first = true;
        Ticker {
            last_demand: AtomicU64::new(now_ms()),
            idle_ms: AtomicU64::new(idle_ms),
            parked: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    });
    if first {
        write_clock(now_ms() as f64);
        // Spawned after the cell is set, so the thread always finds its state. Should the
        // spawn fail, the clock reads +inf ("asleep"): every reader then asks native code for
        // the time, which is slower but still right.
        let spawned = std::thread::Builder::new().name("breakwater-clock".into()).spawn(move || run(t));
        if spawned.is_err() {
            t.alive.store(false, Ordering::Release);
            t.parked.store(true, Ordering::Release);
            write_clock(f64::INFINITY);
        }
    }
    t.idle_ms.fetch_max(idle_ms, Ordering::Relaxed);
    touch();
}

/// Notes that something is using the clock; wakes the thread if it was parked. Returns now.
pub fn touch() -> u64 {
    let now = now_ms();
    if let Some(t) = TICKER.get() {
        t.last_demand.store(now, Ordering::Relaxed);
        if t.parked.load(Ordering::Acquire) && t.alive.load(Ordering::Acquire) {
            let _g = t.lock.lock().unwrap_or_else(|e| e.into_inner());
            t.parked.store(false, Ordering::Release);
            write_clock(now as f64);
            t.wake.notify_one();
        }
    }
    now
}

fn run(t: &'static Ticker) {
    loop {
        let now = now_ms();
        if now.saturating_sub(t.last_demand.load(Ordering::Relaxed)) > t.idle_ms.load(Ordering::Relaxed) {
            let mut g = t.lock.lock().unwrap_or_else(|e| e.into_inner());
            t.parked.store(true, Ordering::Release);
            write_clock(f64::INFINITY);
            while t.parked.load(Ordering::Acquire) {
                g = t.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            continue;
        }
        write_clock(now as f64);
        std::thread::sleep(Duration::from_millis(TICK_MS));
    }
}
