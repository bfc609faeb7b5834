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

use crate::histogram::{bin_of, grow_rows, quantiles_us, Histogram};

pub struct BucketHistograms {
    /// `rows × (buckets + 2)` counters; empty (unallocated) before the first sample.
    cells: Box<[u32]>,
    /// The bin of row 0.
    lo: u32,
    /// Counters per row: the buckets, the window's, the lifetime's.
    stride: u32,
}

impl BucketHistograms {
    pub fn new(buckets: usize) -> BucketHistograms {
        BucketHistograms { cells: Box::default(), lo: 0, stride: buckets as u32 + 2 }
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
    /// that is older than the window: in the lifetime's count only.
    pub fn add(&mut self, bucket: Option<usize>, us: u64) {
        let stride = self.stride();
        let start = self.row(bin_of(us)) * stride;
        let row = &mut self.cells[start..start + stride];
        if let Some(b) = bucket {
            row[b] += 1;
            row[stride - 2] += 1;
        }
        row[stride - 1] += 1;
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
    }

    /// Quantiles `qs` (ascending) of the window's `count` samples.
    pub fn quantiles_us<const N: usize>(&self, count: u64, qs: [f64; N]) -> [f64; N] {
        let (lo, w) = (self.lo as usize, self.window_col());
        quantiles_us(count, qs, self.cells.chunks_exact(self.stride()).enumerate().map(|(r, row)| (lo + r, row[w])))
    }

    /// The lifetime's histogram, given its sample count and sum (kept by the caller).
    pub fn lifetime(&self, count: u64, sum_us: u64) -> Histogram {
        let bins = self.cells.chunks_exact(self.stride()).map(|row| row[row.len() - 1]).collect();
        Histogram::from_parts(self.lo, bins, count, sum_us)
    }

    /// Column `col`'s count in bin `bin` (zero outside the stored range): a bucket's, or with
    /// `buckets`, the window's.
    pub fn bin(&self, col: usize, bin: usize) -> u32 {
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
                    let want = h.bins().iter().nth(bin).copied().unwrap();
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
        let bins = |h: &Histogram| h.bins().iter().copied().collect::<Vec<_>>();
        assert_eq!(bins(&m.lifetime(life.count(), life.sum_us())), bins(&life));
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
        assert_eq!(bins(&m.lifetime(life.count(), life.sum_us())), bins(&life), "a window clear keeps the lifetime's");
        m.clear_lifetime();
        assert!(m.lifetime(0, 0).bins().iter().all(|&c| c == 0));
    }
}
