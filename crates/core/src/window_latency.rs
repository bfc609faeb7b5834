//! The latency histograms of a circuit with a time window: one per bucket, their sum (the
//! window's) and the circuit's lifetime one, stored together as one matrix of counters, so
//! that a circuit's latencies cost one allocation however many buckets it has (a `Histogram`
//! per bucket, one for their sum and one for the lifetime were a box and a vector each, three
//! quarters of them headers and spare capacity).
//!
//! Row `r` holds bin `lo + r` (the bins of `histogram.rs`): the count of each bucket, then the
//! window's (the sum of the buckets'), then the lifetime's (every sample since creation or
//! reset, Prometheus's cumulative view, which a window clear keeps). A percentile walks one
//! column as it would walk a single histogram, and a bucket that ages out is subtracted row by
//! row. The lifetime's range always covers the window's, so the columns share their rows:
//! only the bins between the smallest and the largest sample ever recorded are stored, and
//! nothing before the first sample. Memory is bounded by `BINS` rows of `buckets + 2`
//! counters, whatever the traffic.
//!
//! Counters are 32-bit. The lifetime's feed Prometheus's counters and must never wrap: they
//! carry into `carries.rs`. The window's are not exported, and only a window that takes more
//! than 2^32 samples into one bin could wrap them (the longest window, a day, at 50,000
//! sampled calls a second; every call is sampled when `slowCallDurationMs` is set): such a
//! bin takes no more samples into the window until some age out, which keeps the window's
//! counts and percentiles consistent (a bin merely under-weighted) at no cost per row.

use crate::carries::Carries;
use crate::histogram::{bin_of, grow_rows, quantiles_us, Histogram};

pub struct BucketHistograms {
    /// `rows × (buckets + 2)` counters; empty (unallocated) before the first sample.
    cells: Box<[u32]>,
    /// The bin of row 0.
    lo: u32,
    /// Counters per row: the buckets, the window's, the lifetime's (its low words).
    stride: u32,
    /// The high words of the lifetime's counters.
    carries: Carries,
}

impl BucketHistograms {
    pub fn new(buckets: usize) -> BucketHistograms {
        BucketHistograms { cells: Box::default(), lo: 0, stride: buckets as u32 + 2, carries: Carries::default() }
    }

    fn stride(&self) -> usize {
        self.stride as usize
    }

    fn rows(&self) -> usize {
        self.cells.len() / self.stride()
    }

    /// The column of the window's counts (the lifetime's is the next one).
    fn window_col(&self) -> usize {
        self.stride() - 2
    }

    /// The row of `bin`, growing the stored range to include it.
    fn row(&mut self, bin: usize) -> usize {
        let (lo, rows, stride) = (self.lo as usize, self.rows(), self.stride());
        if rows == 0 {
            grow_rows(&mut self.cells, 0, 1, stride);
            self.lo = bin as u32;
        } else if bin < lo {
            grow_rows(&mut self.cells, lo - bin, 0, stride);
            self.lo = bin as u32;
        } else if bin >= lo + rows {
            grow_rows(&mut self.cells, 0, bin + 1 - lo - rows, stride);
        }
        bin - self.lo as usize
    }

    /// One sample of `us` µs in bucket `bucket` (and so in the window), or with `None`, one
    /// that is older than the window: in the lifetime's count only. Returns whether it went
    /// into the window: not if its bin there is full (see the top of this file).
    pub fn add(&mut self, bucket: Option<usize>, us: u64) -> bool {
        let stride = self.stride();
        let bin = bin_of(us);
        let start = self.row(bin) * stride;
        let row = &mut self.cells[start..start + stride];
        self.carries.increment(bin, &mut row[stride - 1]);
        match bucket {
            // A bucket's count is at most the window's (their sum): neither can wrap.
            Some(b) if row[stride - 2] != u32::MAX => {
                row[b] += 1;
                row[stride - 2] += 1;
                true
            }
            _ => false,
        }
    }

    /// `n` samples of `us` into the lifetime's counts at once: what `n` calls of `add(None,
    /// us)` would do, without the wait.
    #[cfg(test)]
    pub(crate) fn add_lifetime_many(&mut self, us: u64, n: u64) {
        let stride = self.stride();
        let bin = bin_of(us);
        let cell = self.row(bin) * stride + stride - 1;
        let old = self.carries.count(bin, self.cells[cell]);
        self.carries.set(bin, &mut self.cells[cell], old + n);
    }

    /// Empties bucket `bucket`, taking its samples out of the window's; returns how many.
    pub fn clear_bucket(&mut self, bucket: usize) -> u64 {
        let mut n = 0u64;
        for row in self.cells.chunks_exact_mut(self.stride as usize) {
            let c = std::mem::take(&mut row[bucket]);
            if c != 0 {
                let w = row.len() - 2;
                row[w] = row[w].saturating_sub(c);
                n += c as u64;
            }
        }
        n
    }

    /// Empties every bucket and the window; the lifetime's counts and the stored range stay.
    pub fn clear_window(&mut self) {
        let lifetime = self.stride() - 1;
        for row in self.cells.chunks_exact_mut(self.stride as usize) {
            row[..lifetime].fill(0);
        }
    }

    /// Empties the lifetime's counts (a reset); the stored range stays.
    pub fn clear_lifetime(&mut self) {
        let lifetime = self.stride() - 1;
        for row in self.cells.chunks_exact_mut(self.stride as usize) {
            row[lifetime] = 0;
        }
        self.carries.clear();
    }

    /// Quantiles `qs` (ascending) of the window's `count` samples.
    pub fn quantiles_us<const N: usize>(&self, count: u64, qs: [f64; N]) -> [f64; N] {
        let (lo, w) = (self.lo as usize, self.window_col());
        quantiles_us(count, qs, self.cells.chunks_exact(self.stride()).enumerate().map(|(r, row)| (lo + r, row[w] as u64)))
    }

    /// The lifetime's histogram, given its samples' sum (kept by the caller). Its count is the
    /// sum of its bins (a counter fewer per circuit, and Prometheus's `_count` always equals
    /// its `+Inf` bucket).
    pub fn lifetime(&self, sum_us: u64) -> Histogram {
        let bins: Box<[u32]> = self.cells.chunks_exact(self.stride()).map(|row| row[row.len() - 1]).collect();
        let lo = self.lo as usize;
        let count = bins.iter().enumerate().map(|(r, &low)| self.carries.count(lo + r, low)).sum();
        Histogram::from_parts(self.lo, bins, self.carries.clone(), count, sum_us)
    }

    /// Column `col`'s count in bin `bin` (zero outside the stored range): a bucket's, or with
    /// `buckets`, the window's.
    #[cfg(test)]
    fn bin(&self, col: usize, bin: usize) -> u32 {
        let r = bin.wrapping_sub(self.lo as usize);
        if r < self.rows() { self.cells[r * self.stride() + col] } else { 0 }
    }

    /// Bytes of counters stored (for footprint tests).
    pub fn stored_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{Histogram, BINS};

    /// Every bucket's column and the window's agree with separate `Histogram`s fed the same
    /// samples, through growth at both ends, a bucket aging out and a clear.
    #[test]
    fn columns_match_separate_histograms() {
        let n = 4;
        let mut m = BucketHistograms::new(n);
        let mut per: Vec<Histogram> = (0..n).map(|_| Histogram::default()).collect();
        let samples = [(0, 5_000u64), (1, 3), (2, 700_000), (3, 80), (0, 12_000_000), (1, 1), (2, 5_000), (3, u64::MAX / 4)];
        let check = |m: &BucketHistograms, per: &[Histogram]| {
            for bin in 0..BINS {
                let mut sum = 0;
                for (b, h) in per.iter().enumerate() {
                    let want = h.bins().iter().nth(bin).unwrap() as u32;
                    assert_eq!(m.bin(b, bin), want, "bucket {b} bin {bin}");
                    sum += want;
                }
                assert_eq!(m.bin(n, bin), sum, "window bin {bin}");
            }
        };
        let mut life = Histogram::default();
        for &(b, us) in &samples {
            m.add(Some(b), us);
            per[b].add(us);
            life.add(us);
            check(&m, &per);
        }
        m.add(None, 250); // older than the window: the lifetime's only
        life.add(250);
        check(&m, &per);
        let bins = |h: &Histogram| h.bins().iter().collect::<Vec<_>>();
        assert_eq!(bins(&m.lifetime(life.sum_us())), bins(&life));
        assert_eq!(m.lifetime(life.sum_us()).count(), life.count(), "the count is the bins' sum");
        assert!(m.rows() < BINS, "only the range of the samples is stored");
        assert_eq!(m.stored_bytes(), m.rows() * (n + 2) * 4, "no spare capacity");
        let mut all = Histogram::default();
        per.iter().for_each(|h| all.merge(h));
        let q = [0.5, 0.9, 0.99];
        assert_eq!(m.quantiles_us(all.count(), q), all.quantiles_us(q));
        assert_eq!(m.clear_bucket(2), 2);
        per[2] = Histogram::default();
        check(&m, &per);
        m.clear_window();
        per.iter_mut().for_each(|h| *h = Histogram::default());
        check(&m, &per);
        assert_eq!(m.quantiles_us(0, q), [0.0; 3]);
        assert_eq!(bins(&m.lifetime(life.sum_us())), bins(&life), "a window clear keeps the lifetime's");
        m.clear_lifetime();
        assert!(m.lifetime(0).bins().iter().all(|c| c == 0));
    }

    /// A bin of the window that holds 2^32 - 1 samples takes no more (rather than wrap to
    /// zero and make every percentile wrong) until some age out; the lifetime's counts on.
    #[test]
    fn a_full_window_bin_takes_no_more_samples_until_some_age_out() {
        let mut m = BucketHistograms::new(2);
        let (us, w) = (100, m.window_col());
        assert!(m.add(Some(0), us));
        // bucket 1 holds the rest of what four billion samples would leave, without the wait
        m.cells[1] = u32::MAX - 1;
        m.cells[w] = u32::MAX;
        assert!(!m.add(Some(0), us), "the window's bin is full");
        assert!(!m.add(Some(1), us), "the window's bin is full");
        assert_eq!((m.cells[0], m.cells[1], m.cells[w]), (1, u32::MAX - 1, u32::MAX));
        assert_eq!(m.lifetime(300).bins().iter().nth(bin_of(us)).unwrap(), 3, "the lifetime's counts every sample");
        assert_eq!(m.clear_bucket(1), u32::MAX as u64 - 1);
        assert!(m.add(Some(0), us));
        assert_eq!((m.cells[0], m.cells[w]), (2, 2));
        assert_eq!(m.quantiles_us(2, [0.5]), [crate::histogram::bin_value_us(bin_of(us))]);
    }
}
