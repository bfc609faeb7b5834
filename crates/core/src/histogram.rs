//! A latency histogram: log-linear bins, four per power of two, from 1 µs to ~2.4 hours.
//! Recording and removing a sample are O(1); a percentile walks at most 128 bins. The relative
//! error of a reported percentile is at most half a bin, about ±9%, which is what opossum's
//! sort-the-window approach buys with O(n log n) work per call.
//!
//! Only the range of bins between the smallest and the largest sample ever recorded is stored
//! (a dependency's latencies span a few powers of two: 20–30 bins, not 128), and nothing
//! before the first sample: bounded by 128 counters, and by what the traffic actually spans.
//! A circuit with a count window holds two of these (the window's and the lifetime's); one
//! with a time window keeps its buckets', the window's and the lifetime's bins together in one
//! matrix (`window_latency.rs`), which shares the bins and the percentile walk defined here.
//! Bins are 32-bit; a lifetime's, which must never wrap, carry into `carries.rs`.

use crate::carries::Carries;

pub const BINS: usize = 128;

/// The bin of a latency in whole microseconds.
pub fn bin_of(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize; // floor(log2(us)) >= 2
    let m = ((us >> (e - 2)) & 3) as usize;
    (4 * (e - 1) + m).min(BINS - 1)
}

/// The exclusive upper edge of a bin, in microseconds.
pub fn bin_upper_us(bin: usize) -> u64 {
    if bin < 4 {
        return bin as u64 + 1;
    }
    let e = bin / 4 + 1;
    let m = (bin % 4) as u64;
    (5 + m) << (e - 2)
}

/// The value a bin stands for: the middle of its range, in microseconds.
pub fn bin_value_us(bin: usize) -> f64 {
    if bin < 4 {
        return bin as f64;
    }
    let e = bin / 4 + 1;
    let m = (bin % 4) as u64;
    let lo = (4 + m) << (e - 2);
    let hi = (5 + m) << (e - 2);
    (lo + hi) as f64 / 2.0
}

#[derive(Clone, Default)]
pub struct Histogram {
    /// Counts of bins `lo..lo + bins.len()` (their low words: the high ones are `carries`);
    /// empty (and unallocated) before the first sample. Exactly as long as the range: no
    /// spare capacity (see `grow_rows`).
    bins: Box<[u32]>,
    lo: u32,
    count: u64,
    sum_us: u64,
    carries: Carries,
}

/// Adds `front` rows of zeros before and `back` after `cells`, rows being `stride` counters
/// wide, leaving no spare capacity: the range grows a few times in a circuit's life (each new
/// bin its latencies reach), and a doubling Vec would carry up to as much again unused.
pub(crate) fn grow_rows(cells: &mut Box<[u32]>, front: usize, back: usize, stride: usize) {
    let old = std::mem::take(cells);
    let mut v = Vec::with_capacity(old.len() + (front + back) * stride);
    v.resize(front * stride, 0);
    v.extend_from_slice(&old);
    v.resize(old.len() + (front + back) * stride, 0);
    *cells = v.into_boxed_slice();
}

/// Every bin of a histogram, stored or not (see `Histogram::bins`).
pub struct Bins<'a>(&'a Histogram);

impl<'a> Bins<'a> {
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        let h = self.0;
        (0..BINS).map(move |bin| h.get(bin))
    }
}

/// Summary of a histogram in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Histogram {
    /// A histogram of `count` samples summing to `sum_us`, with counts `bins` (low words) and
    /// `carries` from bin `lo`.
    pub(crate) fn from_parts(lo: u32, bins: Box<[u32]>, carries: Carries, count: u64, sum_us: u64) -> Histogram {
        Histogram { bins, lo, count, sum_us, carries }
    }

    /// The index in `bins` of `bin`, growing the stored range to include it.
    fn index(&mut self, bin: usize) -> usize {
        let (lo, len) = (self.lo as usize, self.bins.len());
        if len == 0 {
            self.bins = Box::new([0]);
            self.lo = bin as u32;
        } else if bin < lo {
            grow_rows(&mut self.bins, lo - bin, 0, 1);
            self.lo = bin as u32;
        } else if bin >= lo + len {
            grow_rows(&mut self.bins, 0, bin + 1 - lo - len, 1);
        }
        bin - self.lo as usize
    }

    /// The count of `bin` (zero outside the stored range).
    fn get(&self, bin: usize) -> u64 {
        match bin.checked_sub(self.lo as usize).and_then(|i| self.bins.get(i)) {
            Some(&low) => self.carries.count(bin, low),
            None => 0,
        }
    }

    /// Sets the count of `bin`, growing the stored range to include it.
    fn set(&mut self, bin: usize, n: u64) {
        let i = self.index(bin);
        self.carries.set(bin, &mut self.bins[i], n);
    }

    /// The stored bins.
    fn stored(&self) -> std::ops::Range<usize> {
        self.lo as usize..self.lo as usize + self.bins.len()
    }

    pub fn add(&mut self, us: u64) {
        let bin = bin_of(us);
        let i = self.index(bin);
        self.carries.increment(bin, &mut self.bins[i]);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// `n` samples of `us` at once: what `n` calls of `add` would do, without the wait.
    #[cfg(test)]
    pub(crate) fn add_many(&mut self, us: u64, n: u64) {
        let bin = bin_of(us);
        self.set(bin, self.get(bin) + n);
        self.count += n;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
    }

    pub fn remove(&mut self, us: u64) {
        let bin = bin_of(us);
        if self.stored().contains(&bin) {
            self.set(bin, self.get(bin).saturating_sub(1));
        }
        self.count = self.count.saturating_sub(1);
        self.sum_us = self.sum_us.saturating_sub(us);
    }

    /// Removes every sample of `other` (which must be a subset of this one).
    pub fn subtract(&mut self, other: &Histogram) {
        for bin in other.stored() {
            if self.stored().contains(&bin) {
                self.set(bin, self.get(bin).saturating_sub(other.get(bin)));
            }
        }
        self.count = self.count.saturating_sub(other.count);
        self.sum_us = self.sum_us.saturating_sub(other.sum_us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for bin in other.stored() {
            let n = other.get(bin);
            if n != 0 {
                self.set(bin, self.get(bin) + n);
            }
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Zeroes the counts; the stored range stays (the next samples will likely need it again).
    pub fn clear(&mut self) {
        self.bins.fill(0);
        self.carries.clear();
        self.count = 0;
        self.sum_us = 0;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// All `BINS` counts, in order (zero outside the stored range).
    pub fn bins(&self) -> Bins<'_> {
        Bins(self)
    }

    /// The value (µs) below which a fraction `q` of the samples fall.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.quantiles_us([q])[0]
    }

    /// Several quantiles (ascending) in one walk over the bins.
    pub fn quantiles_us<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        quantiles_us(self.count, qs, self.stored().map(|bin| (bin, self.get(bin))))
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    pub fn summary(&self, max_us: u64) -> LatencySummary {
        LatencySummary::of(self.count, self.sum_us, max_us, self.quantiles_us([0.50, 0.90, 0.99]))
    }
}

/// Quantiles `qs` (ascending) of `count` samples whose non-empty bins `rows` yields as
/// (bin, count) in ascending bin order: one walk, shared by every histogram layout.
pub fn quantiles_us<const N: usize>(count: u64, qs: [f64; N], rows: impl Iterator<Item = (usize, u64)>) -> [f64; N] {
    let mut out = [0.0; N];
    if count == 0 {
        return out;
    }
    let ranks = qs.map(|q| ((q * count as f64).ceil() as u64).clamp(1, count));
    let mut k = 0;
    let mut seen = 0u64;
    for (bin, n) in rows {
        seen += n;
        while k < N && seen >= ranks[k] {
            out[k] = bin_value_us(bin);
            k += 1;
        }
        if k == N {
            return out;
        }
    }
    for o in out.iter_mut().skip(k) {
        *o = bin_value_us(BINS - 1);
    }
    out
}

impl LatencySummary {
    /// The summary of `count` samples summing to `sum_us`, the largest `max_us`, with
    /// percentiles [p50, p90, p99] in µs.
    pub fn of(count: u64, sum_us: u64, max_us: u64, [p50, p90, p99]: [f64; 3]) -> LatencySummary {
        if count == 0 {
            return LatencySummary::default();
        }
        // A bin's middle can lie above the largest sample in it: never report a percentile
        // above the exact maximum.
        let ms = |v: f64| v.min(max_us as f64) / 1000.0;
        LatencySummary {
            count,
            mean_ms: sum_us as f64 / count as f64 / 1000.0,
            p50_ms: ms(p50),
            p90_ms: ms(p90),
            p99_ms: ms(p99),
            max_ms: max_us as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_monotonic_and_contiguous() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bin_of(us);
            assert!(b == last || b == last + 1, "gap at {us}: {last} -> {b}");
            last = b;
        }
        assert_eq!(bin_of(u64::MAX), BINS - 1);
    }

    #[test]
    fn bin_value_is_within_its_bin() {
        for us in [5u64, 17, 100, 999, 12_345, 1_000_000, 30_000_000] {
            let v = bin_value_us(bin_of(us));
            assert!((v - us as f64).abs() / (us as f64) < 0.13, "{us} -> {v}");
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.add(ms * 1000);
        }
        let s = h.summary(100_000);
        assert!((s.p50_ms - 50.0).abs() / 50.0 < 0.13, "{s:?}");
        assert!((s.p90_ms - 90.0).abs() / 90.0 < 0.13, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() / 99.0 < 0.13, "{s:?}");
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        h.remove(100_000);
        assert_eq!(h.count(), 99);
    }

    /// The stored range grows both ways, and every operation agrees with a plain array of
    /// `BINS` counters.
    #[test]
    fn ranged_storage_matches_a_full_array() {
        let samples = [5_000u64, 3, 700_000, 80, 12_000_000, 1, 5_000, 250, u64::MAX / 4]; // past the last bin, and still summable
        let mut h = Histogram::default();
        assert_eq!(h.bins().iter().count(), BINS);
        assert!(h.bins().iter().all(|n| n == 0));
        let mut full = [0u64; BINS];
        for &us in &samples {
            h.add(us);
            full[bin_of(us)] += 1;
            assert_eq!(h.bins().iter().collect::<Vec<_>>(), full.to_vec());
        }
        assert!(h.bins.len() < BINS);
        let mut part = Histogram::default();
        for &us in &samples[2..5] {
            part.add(us);
        }
        let mut sum = Histogram::default();
        sum.merge(&part);
        sum.merge(&h);
        sum.subtract(&part);
        assert_eq!(sum.bins().iter().collect::<Vec<_>>(), full.to_vec());
        assert_eq!((sum.count(), sum.sum_us()), (h.count(), h.sum_us()));
        h.remove(80);
        full[bin_of(80)] -= 1;
        assert_eq!(h.bins().iter().collect::<Vec<_>>(), full.to_vec());
        assert_eq!(h.quantile_us(1.0), bin_value_us(BINS - 1));
        assert_eq!(h.quantile_us(0.0), bin_value_us(bin_of(1)));
        h.clear();
        assert_eq!(h.count(), 0);
        assert!(h.bins().iter().all(|n| n == 0));
    }
}
