//! The latency histograms of a time window: one per bucket and their sum, stored together as
//! one matrix of counters, so that a circuit's window costs one allocation for its latencies
//! however many buckets it has (a `Histogram` per bucket was a box and a vector each, three
//! quarters of them headers and spare capacity).
//!
//! Row `r` holds bin `lo + r` (the bins of `histogram.rs`): the count of each bucket, then the
//! count of the window (the sum of the row), so a percentile walks one column as it would walk
//! a single histogram, and a bucket that ages out is subtracted row by row. Only the range of
//! bins between the smallest and the largest sample ever recorded is stored, and nothing
//! before the first sample: memory is bounded by `BINS` rows of `buckets + 1` counters,
//! whatever the traffic.

use crate::histogram::{bin_of, grow_rows, quantiles_us};

pub struct BucketHistograms {
    /// `rows × (buckets + 1)` counters; empty (unallocated) before the first sample.
    cells: Box<[u32]>,
    /// The bin of row 0.
    lo: u32,
    /// Counters per row: the buckets, then the window's.
    stride: u32,
}

impl BucketHistograms {
    pub fn new(buckets: usize) -> BucketHistograms {
        BucketHistograms { cells: Box::default(), lo: 0, stride: buckets as u32 + 1 }
    }

    fn stride(&self) -> usize {
        self.stride as usize
    }

    fn rows(&self) -> usize {
        self.cells.len() / self.stride()
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

    /// One sample of `us` µs in bucket `bucket` (and so in the window).
    pub fn add(&mut self, bucket: usize, us: u64) {
        let stride = self.stride();
        let start = self.row(bin_of(us)) * stride;
        let row = &mut self.cells[start..start + stride];
        row[bucket] += 1;
        row[row.len() - 1] += 1;
    }

    /// Empties bucket `bucket`, taking its samples out of the window's; returns how many.
    pub fn clear_bucket(&mut self, bucket: usize) -> u64 {
        let mut n = 0u64;
        for row in self.cells.chunks_exact_mut(self.stride as usize) {
            let c = std::mem::take(&mut row[bucket]);
            if c != 0 {
                let last = row.len() - 1;
                row[last] = row[last].saturating_sub(c);
                n += c as u64;
            }
        }
        n
    }

    /// Empties every bucket; the stored range stays (the next samples will likely need it).
    pub fn clear(&mut self) {
        self.cells.fill(0);
    }

    /// Quantiles `qs` (ascending) of the window's `count` samples.
    pub fn quantiles_us<const N: usize>(&self, count: u64, qs: [f64; N]) -> [f64; N] {
        let (lo, stride) = (self.lo as usize, self.stride());
        quantiles_us(count, qs, self.cells.chunks_exact(stride).enumerate().map(|(r, row)| (lo + r, row[stride - 1])))
    }

    /// The window's count in bin `bin` (zero outside the stored range).
    pub fn window_bin(&self, bin: usize) -> u32 {
        let r = bin.wrapping_sub(self.lo as usize);
        if r < self.rows() { self.cells[r * self.stride() + self.stride() - 1] } else { 0 }
    }

    /// Bucket `bucket`'s count in bin `bin` (zero outside the stored range).
    pub fn bucket_bin(&self, bucket: usize, bin: usize) -> u32 {
        let r = bin.wrapping_sub(self.lo as usize);
        if r < self.rows() { self.cells[r * self.stride() + bucket] } else { 0 }
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
                    let want = h.bins().iter().nth(bin).copied().unwrap();
                    assert_eq!(m.bucket_bin(b, bin), want, "bucket {b} bin {bin}");
                    sum += want;
                }
                assert_eq!(m.window_bin(bin), sum, "window bin {bin}");
            }
        };
        for &(b, us) in &samples {
            m.add(b, us);
            per[b].add(us);
            check(&m, &per);
        }
        assert!(m.rows() < BINS, "only the range of the samples is stored");
        assert_eq!(m.stored_bytes(), m.rows() * (n + 1) * 4, "no spare capacity");
        let mut all = Histogram::default();
        per.iter().for_each(|h| all.merge(h));
        let q = [0.5, 0.9, 0.99];
        assert_eq!(m.quantiles_us(all.count(), q), all.quantiles_us(q));
        assert_eq!(m.clear_bucket(2), 2);
        per[2] = Histogram::default();
        check(&m, &per);
        m.clear();
        per.iter_mut().for_each(|h| *h = Histogram::default());
        check(&m, &per);
        assert_eq!(m.quantiles_us(0, q), [0.0; 3]);
    }
}
