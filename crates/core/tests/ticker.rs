//! The coarse clock: it ticks while used, sleeps (+inf) when idle, and wakes on demand.
//! In its own test binary: the ticker is process-global.

use breakwater_core::arena::{self, layout};
use breakwater_core::ticker;
use std::time::Duration;

fn clock() -> f64 {
    arena::process_slot().load_f64(layout::CLOCK_F64 * 2)
}

#[test]
fn ticks_sleeps_when_idle_and_wakes_on_demand() {
    ticker::start(300);
    let a = clock();
    assert!((a - ticker::now_ms() as f64).abs() < 50.0, "clock starts at now: {a}");
    std::thread::sleep(Duration::from_millis(100));
    ticker::touch();
    let b = clock();
    assert!(b - a >= 80.0, "clock advanced while in use: {a} -> {b}");
    assert!((ticker::now_ms() as f64 - b).abs() <= 2.0 * ticker::TICK_MS as f64 + 20.0, "clock lags by at most a couple of ticks");
    // nobody touches it for longer than idle: the thread parks and the clock reads +inf
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(clock(), f64::INFINITY);
    // a touch wakes it with the real time at once
    let now = ticker::touch() as f64;
    let c = clock();
    assert!(c.is_finite() && (c - now).abs() < 20.0, "woken clock: {c} vs {now}");
    std::thread::sleep(Duration::from_millis(60));
    assert!(clock() > c, "and it ticks again");
}
