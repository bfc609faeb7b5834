//! The window of recent calls that the tripping rules look at.
//!
//! Both kinds cost O(1) per recorded call whatever their size, and their memory is fixed at
//! creation: a count window keeps one byte per call it holds; a time window keeps one bucket
//! per `durationMs / buckets`, and buckets age by elapsed time (a bucket is emptied when the
//! clock passes beyond the window), never by the number of calls. Latency samples ride along
//! in the same structure so that `latencyMs` describes the same calls as `failureRate`.

use crate::config::WindowKind;
use crate::histogram::{Histogram, LatencySummary};
use crate::window_latency::BucketHistograms;

/// Counts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub failures: u64,
    pub successes: u64,
    pub slow: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.calls += o.calls;
        self.failures += o.failures;
        self.successes += o.successes;
        self.slow += o.slow;
    }
    fn sub(&mut self, o: &Totals) {
        self.calls -= o.calls;
        self.failures -= o.failures;
        self.successes -= o.successes;
        self.slow -= o.slow;
    }
    fn of(failure: bool, slow: bool, n: u64) -> Totals {
        Totals {
            calls: n,
            failures: if failure { n } else { 0 },
            successes: if failure { 0 } else { n },
            slow: if slow { n } else { 0 },
        }
    }
}

pub enum Window {
    /// Boxed: the less common kind, and larger; the enum is as small as a time window.
    Count(Box<CountWindow>),
    Time(TimeWindow),
}

impl Window {
    pub fn new(kind: WindowKind, now_ms: u64) -> Window {
        match kind {
            WindowKind::Count { size } => Window::Count(Box::new(CountWindow::new(size as usize))),
            WindowKind::Time { duration_ms, buckets } => {
                Window::Time(TimeWindow::new(duration_ms, buckets as usize, now_ms))
            }
        }
    }

    /// Records `n` calls with the same outcome that happened at `at_ms`.
    pub fn record(&mut self, at_ms: u64, failure: bool, slow: bool, n: u64) {
        match self {
            Window::Count(w) => w.record(failure, slow, n),
            Window::Time(w) => w.record(at_ms, Totals::of(failure, slow, n)),
        }
    }

    pub fn record_latency(&mut self, at_ms: u64, us: u64) {
        match self {
            Window::Count(w) => w.record_latency(us),
            Window::Time(w) => w.record_latency(at_ms, us),
        }
    }

    pub fn totals(&mut self, now_ms: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals,
            Window::Time(w) => {
                w.advance(now_ms);
                w.totals
            }
        }
    }

    pub fn latency(&mut self, now_ms: u64) -> LatencySummary {
        match self {
            Window::Count(w) => w.latency(),
            Window::Time(w) => {
                w.advance(now_ms);
                w.latency()
            }
        }
    }

    /// Empties the window; the lifetime latencies stay.
    pub fn clear(&mut self, now_ms: u64) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(now_ms),
        }
    }

    /// Every latency sample since creation or `clear_lifetime` (Prometheus's cumulative
    /// histogram), window or not. Kept here because a time window stores them with its own.
    pub fn lifetime_latency(&self) -> Histogram {
        match self {
            Window::Count(w) => w.lifetime.clone(),
            Window::Time(w) => w.lat.lifetime(w.life_sum_us),
        }
    }

    pub fn clear_lifetime(&mut self) {
        match self {
            Window::Count(w) => w.lifetime.clear(),
            Window::Time(w) => {
                w.lat.clear_lifetime();
                w.life_sum_us = 0;
            }
        }
    }

    /// The start of the time bucket that holds `now_ms` and its end, for callers that batch
    /// calls per bucket. A count window has no buckets: `(now, +inf)`.
    pub fn bucket_bounds(&self, now_ms: u64) -> (u64, f64) {
        match self {
            Window::Count(_) => (now_ms, f64::INFINITY),
            Window::Time(w) => {
                let start = now_ms - now_ms % w.width_ms;
                (start, (start + w.width_ms) as f64)
            }
        }
    }

    pub fn bucket_width_ms(&self) -> Option<u64> {
        match self {
            Window::Count(_) => None,
            Window::Time(w) => Some(w.width_ms),
        }
    }
}

const FAIL: u8 = 1;
const SLOW: u8 = 2;

/// The last `size` calls, as a ring of one byte each.
pub struct CountWindow {
    ring: Vec<u8>,
    head: usize,
    len: usize,
    totals: Totals,
    /// Sampled latencies of (roughly) the same calls: a ring of at most `size` samples.
    lat_ring: Vec<u32>,
    lat_head: usize,
    lat_len: usize,
    hist: Histogram,
    /// Every sample since creation or `clear_lifetime`.
    lifetime: Histogram,
}

impl CountWindow {
    pub fn new(size: usize) -> CountWindow {
        CountWindow {
            ring: vec![0; size],
            head: 0,
            len: 0,
            totals: Totals::default(),
            lat_ring: Vec::new(),
            lat_head: 0,
            lat_len: 0,
            hist: Histogram::default(),
            lifetime: Histogram::default(),
        }
    }

    fn record(&mut self, failure: bool, slow: bool, n: u64) {
        let size = self.ring.len();
        // A batch larger than the window replaces it whole: O(size), never O(n).
        let n = n.min(size as u64) as usize;
        let flags = (if failure { FAIL } else { 0 }) | (if slow { SLOW } else { 0 });
        for _ in 0..n {
            if self.len == size {
                let old = self.ring[self.head];
                self.totals.sub(&Totals::of(old & FAIL != 0, old & SLOW != 0, 1));
            } else {
                self.len += 1;
            }
            self.ring[self.head] = flags;
            self.head = (self.head + 1) % size;
            self.totals.add(&Totals::of(failure, slow, 1));
        }
    }

    fn record_latency(&mut self, us: u64) {
        self.lifetime.add(us);
        let cap = self.ring.len().min(4096);
        if self.lat_ring.is_empty() {
            self.lat_ring = vec![0; cap];
        }
        let us32 = us.min(u32::MAX as u64) as u32;
        if self.lat_len == cap {
            self.hist.remove(self.lat_ring[self.lat_head] as u64);
        } else {
            self.lat_len += 1;
        }
        self.lat_ring[self.lat_head] = us32;
        self.lat_head = (self.lat_head + 1) % cap;
        self.hist.add(us32 as u64);
    }

    fn latency(&self) -> LatencySummary {
        // The exact maximum is a scan of the samples: it runs on a stats read, never per call.
        // The ring fills from index 0, so the first `lat_len` entries are the live ones.
        let max = self.lat_ring[..self.lat_len].iter().copied().max().unwrap_or(0);
        self.hist.summary(max as u64)
    }

    fn clear(&mut self) {
        self.ring.iter_mut().for_each(|b| *b = 0);
        self.head = 0;
        self.len = 0;
        self.totals = Totals::default();
        self.lat_head = 0;
        self.lat_len = 0;
        self.lat_ring.iter_mut().for_each(|v| *v = 0);
        self.hist.clear();
    }
}

/// One time bucket's counts. Which slice of time it holds is implied: bucket `i` holds the one
/// epoch `e` of the window (`head - n < e <= head`) with `e mod n == i`, because `advance`
/// empties a bucket whenever the window moves past it.
#[derive(Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    failures: u64,
    slow: u64,
    /// Sum and maximum of the bucket's latency samples (their bins: `BucketHistograms`).
    lat_sum_us: u64,
    lat_max_us: u64,
}

/// The calls of the last `duration_ms`, in buckets of `duration_ms / buckets`.
pub struct TimeWindow {
    width_ms: u64,
    /// The newest epoch the window has advanced to.
    head: i64,
    buckets: Box<[Bucket]>,
    totals: Totals,
    /// The window's latency samples: how many, their sum; their bins per bucket are in `lat`.
    lat_count: u64,
    lat_sum_us: u64,
    /// The sum of the lifetime's samples (see `Window::lifetime_latency`); their bins are in
    /// `lat` too, and their count is the bins' sum.
    life_sum_us: u64,
    lat: BucketHistograms,
}

impl TimeWindow {
    pub fn new(duration_ms: u64, n: usize, now_ms: u64) -> TimeWindow {
        let width_ms = (duration_ms / n as u64).max(1);
        TimeWindow {
            width_ms,
            head: (now_ms / width_ms) as i64,
            buckets: vec![Bucket::default(); n].into_boxed_slice(),
            totals: Totals::default(),
            lat_count: 0,
            lat_sum_us: 0,
            life_sum_us: 0,
            lat: BucketHistograms::new(n),
        }
    }

    fn n(&self) -> i64 {
        self.buckets.len() as i64
    }

    /// Empties the buckets that time has pushed out of the window. At most `buckets` steps
    /// however long the pause was (a Lambda thawed after an hour empties the window once).
    fn advance(&mut self, now_ms: u64) {
        let epoch = (now_ms / self.width_ms) as i64;
        if epoch <= self.head {
            return;
        }
        let n = self.n();
        if epoch - self.head >= n {
            // Every bucket ages out: one pass over the latency bins, not one per bucket.
            self.empty(epoch);
            return;
        }
        for e in (self.head + 1)..=epoch {
            let i = e.rem_euclid(n) as usize;
            let b = std::mem::take(&mut self.buckets[i]);
            self.totals.sub(&Totals { calls: b.calls, failures: b.failures, successes: b.calls - b.failures, slow: b.slow });
            if self.lat_count != 0 {
                self.lat_count -= self.lat.clear_bucket(i);
                self.lat_sum_us = self.lat_sum_us.saturating_sub(b.lat_sum_us);
            }
        }
        self.head = epoch;
    }

    /// The bucket index for `at_ms`, advancing the window if `at_ms` is newer than its head;
    /// None if `at_ms` is older than the window (the call aged out before it was recorded).
    fn bucket_at(&mut self, at_ms: u64) -> Option<usize> {
        self.advance(at_ms);
        let epoch = (at_ms / self.width_ms) as i64;
        if epoch <= self.head - self.n() {
            return None;
        }
        Some(epoch.rem_euclid(self.n()) as usize)
    }

    fn record(&mut self, at_ms: u64, t: Totals) {
        if let Some(i) = self.bucket_at(at_ms) {
            let b = &mut self.buckets[i];
            b.calls += t.calls;
            b.failures += t.failures;
            b.slow += t.slow;
            self.totals.add(&t);
        }
    }

    fn record_latency(&mut self, at_ms: u64, us: u64) {
        let bucket = self.bucket_at(at_ms);
        // false for a sample older than the window, or one whose bin in the window is full
        let in_window = self.lat.add(bucket, us);
        if let (Some(i), true) = (bucket, in_window) {
            let b = &mut self.buckets[i];
            b.lat_sum_us = b.lat_sum_us.saturating_add(us);
            b.lat_max_us = b.lat_max_us.max(us);
            self.lat_count += 1;
            self.lat_sum_us = self.lat_sum_us.saturating_add(us);
        }
        self.life_sum_us = self.life_sum_us.saturating_add(us);
    }

    fn latency(&self) -> LatencySummary {
        let max = self.buckets.iter().map(|b| b.lat_max_us).max().unwrap_or(0);
        let q = self.lat.quantiles_us(self.lat_count, [0.50, 0.90, 0.99]);
        LatencySummary::of(self.lat_count, self.lat_sum_us, max, q)
    }

    /// Empty, with `epoch` as the newest bucket; the lifetime's latencies and the allocations stay.
    fn empty(&mut self, epoch: i64) {
        self.buckets.fill(Bucket::default());
        self.totals = Totals::default();
        self.lat_count = 0;
        self.lat_sum_us = 0;
        self.lat.clear_window();
        self.head = epoch;
    }

    fn clear(&mut self, now_ms: u64) {
        self.empty((now_ms / self.width_ms) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_the_last_n() {
        let mut w = Window::new(WindowKind::Count { size: 3 }, 0);
        w.record(0, true, false, 1);
        w.record(0, true, false, 1);
        assert_eq!(w.totals(0), Totals { calls: 2, failures: 2, successes: 0, slow: 0 });
        w.record(0, false, true, 2); // evicts the first failure
        assert_eq!(w.totals(0), Totals { calls: 3, failures: 1, successes: 2, slow: 2 });
        w.record(0, false, false, 1_000_000); // a batch larger than the window
        assert_eq!(w.totals(0), Totals { calls: 3, failures: 0, successes: 3, slow: 0 });
    }

    #[test]
    fn time_buckets_age_by_elapsed_time_not_calls() {
        // 10 s in 10 buckets of 1 s
        let mut w = Window::new(WindowKind::Time { duration_ms: 10_000, buckets: 10 }, 100_000);
        w.record(100_000, true, false, 5);
        w.record(104_500, false, false, 5);
        assert_eq!(w.totals(105_000).calls, 10);
        // 10 s after the first bucket started it is gone, the second is still there
        assert_eq!(w.totals(110_000), Totals { calls: 5, failures: 0, successes: 5, slow: 0 });
        assert_eq!(w.totals(113_999).calls, 5);
        assert_eq!(w.totals(114_000).calls, 0);
        // a pause of an hour empties it in one step
        w.record(115_000, true, false, 3);
        assert_eq!(w.totals(115_000 + 3_600_000).calls, 0);
    }

    #[test]
    fn late_records_land_in_their_own_bucket_or_nowhere() {
        let mut w = Window::new(WindowKind::Time { duration_ms: 10_000, buckets: 10 }, 0);
        w.record(50_000, false, false, 1);
        w.record(45_000, true, false, 1); // 5 s late: still inside
        w.record(30_000, true, false, 1); // 20 s late: older than the window
        assert_eq!(w.totals(50_000), Totals { calls: 2, failures: 1, successes: 1, slow: 0 });
        assert_eq!(w.totals(55_999).calls, 1);
    }

    #[test]
    fn latency_follows_the_window() {
        let mut w = Window::new(WindowKind::Time { duration_ms: 2_000, buckets: 2 }, 0);
        w.record_latency(0, 10_000);
        w.record_latency(1_000, 30_000);
        let s = w.latency(1_500);
        assert_eq!(s.count, 2);
        assert_eq!(s.max_ms, 30.0);
        let s = w.latency(2_500);
        assert_eq!(s.count, 1);
        assert!((s.mean_ms - 30.0).abs() < 1e-9);

        let mut c = Window::new(WindowKind::Count { size: 2 }, 0);
        for us in [1_000, 2_000, 3_000] {
            c.record_latency(0, us);
        }
        let s = c.latency(0);
        assert_eq!(s.count, 2);
        assert_eq!(s.max_ms, 3.0);
    }

    /// A time window agrees, after every step, with a model that keeps every call and sample
    /// with its epoch and looks at those of the last `n` epochs: counts and the latency summary
    /// (exactly: the same bins), through late records, aging, long pauses and clears; and its
    /// lifetime latencies with one that keeps every sample.
    #[test]
    fn time_window_matches_a_model_that_keeps_every_sample() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for (duration_ms, n) in [(60_000u64, 10usize), (1_000, 1), (7_000, 7)] {
            let width = duration_ms / n as u64;
            let mut w = Window::new(WindowKind::Time { duration_ms, buckets: n as u32 }, 5_000);
            let mut head = (5_000 / width) as i64;
            let mut calls: Vec<(i64, Totals)> = Vec::new();
            let mut lats: Vec<(i64, u64)> = Vec::new();
            let mut life = Histogram::default(); // every sample: a window clear keeps them
            let mut now = 5_000u64;
            for step in 0..3_000 {
                now += match rnd(100) {
                    0 => duration_ms * 3, // a long pause
                    1..=20 => width,
                    _ => rnd(width / 4 + 1),
                };
                let at = now.saturating_sub(if rnd(4) == 0 { rnd(duration_ms + width) } else { 0 }); // some late
                head = head.max((at / width) as i64);
                let e = (at / width) as i64;
                let inside = e > head - n as i64;
                match rnd(10) {
                    0 if step % 97 == 0 => {
                        w.clear(now);
                        head = (now / width) as i64;
                        calls.clear();
                        lats.clear();
                    }
                    0..=5 => {
                        let (failure, slow, k) = (rnd(3) == 0, rnd(5) == 0, 1 + rnd(50));
                        w.record(at, failure, slow, k);
                        if inside {
                            calls.push((e, Totals::of(failure, slow, k)));
                        }
                    }
                    _ => {
                        let us = [rnd(10), 900 + rnd(200), 20_000 + rnd(80_000), rnd(1 << 40)][rnd(4) as usize];
                        w.record_latency(at, us);
                        life.add(us);
                        if inside {
                            lats.push((e, us));
                        }
                    }
                }
                head = head.max((now / width) as i64);
                let live = |ep: i64| ep > head - n as i64;
                let mut want = Totals::default();
                calls.iter().filter(|c| live(c.0)).for_each(|c| want.add(&c.1));
                assert_eq!(w.totals(now), want, "step {step}");
                let mut h = Histogram::default();
                let mut max = 0;
                for &(_, us) in lats.iter().filter(|l| live(l.0)) {
                    h.add(us);
                    max = max.max(us);
                }
                assert_eq!(w.latency(now), h.summary(max), "step {step}");
                let l = w.lifetime_latency();
                assert_eq!((l.count(), l.sum_us()), (life.count(), life.sum_us()), "step {step}");
                assert!(l.bins().iter().eq(life.bins().iter()), "step {step}");
            }
        }
    }

    /// The lifetime's latencies feed Prometheus's cumulative histogram, whose counters must
    /// never go backwards: a bin past 2^32 samples counts on (as 32-bit bins, it went back to
    /// zero: a reset to Prometheus, and rate() broken).
    #[test]
    fn lifetime_latency_bins_count_past_2_pow_32() {
        let us = 1_234;
        let bin = crate::histogram::bin_of(us);
        let nth = |h: &Histogram| h.bins().iter().nth(bin).unwrap();
        for kind in [WindowKind::Count { size: 100 }, WindowKind::Time { duration_ms: 10_000, buckets: 10 }] {
            let mut w = Window::new(kind, 0);
            w.record_latency(0, us);
            // what four billion more calls would leave, without the wait
            let seed = u32::MAX as u64 - 3;
            match &mut w {
                Window::Count(c) => c.lifetime.add_many(us, seed),
                Window::Time(t) => {
                    t.lat.add_lifetime_many(us, seed);
                    t.life_sum_us += us * seed;
                }
            }
            let mut last = nth(&w.lifetime_latency());
            assert_eq!(last, seed + 1, "{kind:?}");
            for i in 1..=8 {
                w.record_latency(i, us);
                let l = w.lifetime_latency();
                assert_eq!(nth(&l), last + 1, "{kind:?}: after {i} more samples");
                assert_eq!(l.count(), nth(&l), "{kind:?}: the count agrees with the bins");
                assert_eq!(l.sum_us(), us * l.count(), "{kind:?}");
                last = nth(&l);
            }
            assert!(last > u32::MAX as u64 + 4, "{kind:?}");
            assert_eq!(w.latency(8).count, 9, "{kind:?}: the window's samples are its own");
            w.clear_lifetime();
            assert!(w.lifetime_latency().bins().iter().all(|n| n == 0), "{kind:?}: a reset zeroes the carries too");
            w.record_latency(9, us);
            assert_eq!(nth(&w.lifetime_latency()), 1, "{kind:?}");
        }
    }
}
