//! A coarse clock in shared memory, so the hot path can tell which time bucket a call falls in
//! by reading one f64 (~1 ns) instead of reading a clock (~60 ns here). It is the circuit clock
//! (`now_ms`), monotonic: not `Date.now()`.
//!
//! One thread per process writes the time every `TICK_MS`. It is not a timer in the event
//! loop (a process with circuits still exits by itself) and it costs no CPU when idle: when no
//! native entry point has been called for `idle_ms`, it writes +inf and parks. +inf makes
//! every reader's "has the bucket ended?" test true, so the next call crosses into native
//! code, which wakes the thread and writes the real time at once.

use crate::arena::{self, layout};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const TICK_MS: u64 = 5;

/// The circuit clock, in milliseconds from an arbitrary origin, the same for every thread of
/// the process: every duration (open periods, half-open timeouts, time buckets) is measured on
/// it. It is monotonic, so a step of the wall clock (NTP, a VM resume, a manual change) moves
/// nothing, and it keeps counting while the process is frozen (SIGSTOP, a Lambda environment
/// between invocations). On Linux it is CLOCK_BOOTTIME: CLOCK_MONOTONIC plus the time the
/// system spent suspended, so an open period that spans a suspended laptop or VM is still
/// measured as the time that really passed (both are in the vDSO, equally cheap).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
pub fn now_ms() -> u64 {
    // macOS's CLOCK_MONOTONIC also counts sleep (it is mach_continuous_time).
    #[cfg(target_os = "macos")]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    #[cfg(not(target_os = "macos"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // Cannot fail for a valid clock id and pointer; should it, the time reads as 0 (long ago).
    unsafe { libc::clock_gettime(CLOCK, &mut t) };
    (t.tv_sec as u64).wrapping_mul(1000).wrapping_add(t.tv_nsec as u64 / 1_000_000)
}

/// Elsewhere (Windows): std's monotonic `Instant` (QueryPerformanceCounter), from the first use.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub fn now_ms() -> u64 {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    // Starts at 1 s, so no real moment reads as 0.
    1000 + ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

/// Wall-clock epoch milliseconds (what `Date.now()` returns): only for moments a user reads.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A step smaller than this is not followed by `wall_offset` (reading the two clocks is not
/// atomic; a preempted read must not move every reported moment).
const STEP_MS: i64 = 25;
static OFFSET: AtomicI64 = AtomicI64::new(i64::MIN);

/// Epoch ms minus circuit-clock ms. Both clocks advance at the same rate (NTP slews both), so
/// this only changes when the wall clock is stepped; it is kept stable between steps so that a
/// moment (`stateChangedAt`) reads the same every time it is converted.
pub fn wall_offset() -> i64 {
    let mut fresh = 0;
    let mut exact = false;
    // The wall clock read between two monotonic reads no more than 1 ms apart (a thread
    // preempted in between, on a loaded machine, would misread the offset).
    for _ in 0..4 {
        let a = now_ms();
        let w = wall_ms() as i64;
        let b = now_ms();
        fresh = w - (a / 2 + b / 2) as i64;
        if b - a <= 1 {
            exact = true;
            break;
        }
    }
    let cur = OFFSET.load(Ordering::Relaxed);
    if cur == i64::MIN || (exact && (fresh - cur).abs() > STEP_MS) {
        OFFSET.store(fresh, Ordering::Relaxed);
        return fresh;
    }
    cur
}

/// `t + off`, saturating at both ends of u64 (a snapshot may hold any number).
pub fn shift(t: u64, off: i64) -> u64 {
    if off >= 0 { t.saturating_add(off as u64) } else { t.saturating_sub(off.unsigned_abs()) }
}

/// The epoch ms of circuit-clock moment `t`, as the wall clock reads now.
pub fn to_wall(t: u64) -> u64 {
    shift(t, wall_offset())
}

/// The circuit-clock moment of epoch ms `epoch` (0 for anything before the clock's origin:
/// long past).
pub fn from_wall(epoch: u64) -> u64 {
    shift(epoch, wall_offset().saturating_neg())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_clock_is_monotonic_and_converts_to_epoch_and_back() {
        let a = now_ms();
        std::thread::sleep(Duration::from_millis(20));
        let b = now_ms();
        assert!(b >= a + 19 && b < a + 2_000, "{a} -> {b}");
        // A moment converts to the epoch ms the wall clock reads for it, and back exactly.
        let wall = to_wall(b) as i64;
        assert!((wall - wall_ms() as i64).abs() < 1_000, "{wall} vs {}", wall_ms());
        assert_eq!(from_wall(to_wall(b)), b);
        // Converting the same moment again gives the same epoch ms (no jitter between reads).
        assert_eq!(to_wall(a), to_wall(a));
        // Before the clock's origin is long past, and the far future stays far: no wrap-around.
        assert_eq!(from_wall(0), 0);
        assert_eq!(to_wall(from_wall(u64::MAX)), u64::MAX);
    }
}
