//! The high words of the lifetime latency counters. Those counters feed Prometheus's
//! cumulative histogram (`_bucket`, `_count`), which must never go backwards: a 32-bit bin
//! wraps after 2^32 samples (about 50 days of one circuit at 1,000 samples/s, a few days
//! at 10k calls/s with every call timed for `slowCallDurationMs`), and a counter that drops reads as a reset.
//!
//! A bin's count is its 32-bit low word, stored with the other bins, plus 2^32 times its
//! carry here. The carries are allocated at the first wrap (by then a circuit has recorded
//! 4 billion samples, 512 bytes are nothing), so until then they cost one null pointer
//! instead of four more bytes per stored bin. Indexed by bin, not by stored row, so that
//! a histogram's range can grow without moving them.

use crate::histogram::BINS;

#[derive(Clone, Default)]
pub struct Carries(Option<Box<[u32; BINS]>>);

impl Carries {
    /// Bin `bin`'s count, given its low word.
    pub fn count(&self, bin: usize, low: u32) -> u64 {
        let high = self.0.as_ref().map_or(0, |c| c[bin]);
        (high as u64) << 32 | low as u64
    }

    /// Adds one to bin `bin`, whose low word is `low`.
    #[inline]
    pub fn increment(&mut self, bin: usize, low: &mut u32) {
        *low = low.wrapping_add(1);
        if *low == 0 {
            *self.high(bin) += 1;
        }
    }

    /// Sets bin `bin` to `n`, writing its low word to `low`.
    pub fn set(&mut self, bin: usize, low: &mut u32, n: u64) {
        *low = n as u32;
        let high = (n >> 32) as u32;
        if high != 0 || self.0.is_some() {
            *self.high(bin) = high;
        }
    }

    /// Zeroes every carry (the low words are the caller's to zero).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    fn high(&mut self, bin: usize) -> &mut u32 {
        &mut self.0.get_or_insert_with(|| Box::new([0; BINS]))[bin]
    }
}
