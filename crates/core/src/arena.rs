//! Memory shared with JavaScript: fixed-size slots of 32-bit atomics that every thread of the
//! process maps as an `Int32Array` and reads or bumps with `Atomics`, so the hot path of
//! `execute` never crosses into native code.
//!
//! Slots live in chunks of 256 that are allocated once and never freed (a chunk is 32 KiB),
//! so a pointer handed to JavaScript stays valid for the life of the process and a finalizer
//! has nothing to do. One slot is 128 bytes — two cache lines — so a slot written on every
//! call by one thread (a lane) never shares a line with another thread's.
//!
//! Slot 0 is the process's own: it holds the coarse clock (see `ticker.rs`). Every other slot
//! is either a circuit (written by native code on transitions, read by every thread) or a
//! lane (one JS instance's pending counts, written by that instance, drained by native code).

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

pub const SLOT_I32: usize = 32;
pub const SLOTS_PER_CHUNK: usize = 256;
pub const CHUNK_I32: usize = SLOT_I32 * SLOTS_PER_CHUNK;

/// Field offsets (in i32 units) inside a slot; the JS layer reads them from `layout()`.
pub mod layout {
    // slot 0
    /// f64 index (in a Float64Array over chunk 0) of the coarse clock: circuit-clock ms (ticker.rs; monotonic, not epoch).
    pub const CLOCK_F64: usize = 1;
    // a circuit slot
    pub const MODE: usize = 0;
    /// i32 offset of the f64 `nextAttemptAt` (circuit-clock ms; +inf when forced open).
    pub const NEXT_ATTEMPT: usize = 2;
    pub const SEQ: usize = 4;
    /// How many more failures the fast path may count in its lane without asking (see
    /// `Circuit::failure_budget`). On the slot's second cache line: failures decrement it from
    /// every thread, and the mode word that every call reads must not share its line.
    pub const BUDGET: usize = 16;
    // a lane slot
    pub const OK: usize = 0;
    pub const IGNORED: usize = 1;
    pub const REJECTED: usize = 2;
    pub const FALLBACK: usize = 3;
    pub const RING_HEAD: usize = 4;
    pub const RING_TAIL: usize = 5;
    /// Failures counted by the fast path (within the circuit's budget).
    pub const FAIL: usize = 6;
    /// The lane's `OK` count when its latest batched failure was counted: tells native code
    /// whether the lane's last outcome was a success or a failure.
    pub const FAIL_AT_OK: usize = 7;
    /// i32 offset of the f64 time (circuit-clock ms, coarse clock) of the lane's latest batched failure.
    pub const LAST_FAIL: usize = 8;
    pub const RING: usize = 16;
    pub const RING_LEN: usize = 16;

    /// Values of `MODE`. Only CLOSED (0) takes the batched fast path.
    pub const MODE_CLOSED: i32 = 0;
    pub const MODE_OPEN: i32 = 1;
    pub const MODE_HALF_OPEN: i32 = 2;
    /// CLOSED, but a single success could trip it: report every outcome at once.
    pub const MODE_CLOSED_EAGER: i32 = 3;
    pub const MODE_FORCED_OPEN: i32 = 4;
    pub const MODE_DISPOSED: i32 = 5;
}

#[repr(C, align(128))]
pub struct Slot(pub [AtomicI32; SLOT_I32]);

impl Slot {
    pub fn get(&self, field: usize) -> &AtomicI32 {
        &self.0[field]
    }

    /// The f64 stored in two i32 cells starting at `field` (8-byte aligned), as one 64-bit
    /// store, so that a reader on another thread never sees half of it.
    pub fn store_f64(&self, field: usize, v: f64) {
        debug_assert!(field % 2 == 0);
        let cell = unsafe { &*(self.0.as_ptr().add(field) as *const AtomicU64) };
        cell.store(v.to_bits(), Ordering::Release);
    }

    pub fn load_f64(&self, field: usize) -> f64 {
        let cell = unsafe { &*(self.0.as_ptr().add(field) as *const AtomicU64) };
        f64::from_bits(cell.load(Ordering::Acquire))
    }

    fn clear(&self) {
        for c in &self.0 {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A slot handed out by `alloc`: its id and a reference that lives as long as the process.
#[derive(Clone, Copy)]
pub struct SlotRef {
    pub id: u32,
    pub slot: &'static Slot,
}

impl SlotRef {
    /// Index of this slot's first i32 inside its chunk's Int32Array.
    pub fn base(&self) -> u32 {
        (self.id as usize % SLOTS_PER_CHUNK * SLOT_I32) as u32
    }
    pub fn chunk(&self) -> u32 {
        self.id / SLOTS_PER_CHUNK as u32
    }
}

struct Arena {
    chunks: Vec<&'static [Slot]>,
    free: Vec<u32>,
    next: u32,
}

static ARENA: Mutex<Arena> = Mutex::new(Arena { chunks: Vec::new(), free: Vec::new(), next: 0 });

fn lock() -> std::sync::MutexGuard<'static, Arena> {
    // A panic elsewhere must not make the arena unusable.
    ARENA.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_chunk() -> &'static [Slot] {
    let v: Vec<Slot> = (0..SLOTS_PER_CHUNK).map(|_| Slot(std::array::from_fn(|_| AtomicI32::new(0)))).collect();
    Box::leak(v.into_boxed_slice())
}

impl Arena {
    fn slot(&self, id: u32) -> &'static Slot {
        &self.chunks[id as usize / SLOTS_PER_CHUNK][id as usize % SLOTS_PER_CHUNK]
    }

    fn ensure_chunk0(&mut self) {
        if self.chunks.is_empty() {
            self.chunks.push(new_chunk());
            self.next = 1; // slot 0 is the process's own
        }
    }
}

/// A zeroed slot.
pub fn alloc() -> SlotRef {
    let mut a = lock();
    a.ensure_chunk0();
    let id = match a.free.pop() {
        Some(id) => id,
        None => {
            let id = a.next;
            a.next += 1;
            if id as usize / SLOTS_PER_CHUNK >= a.chunks.len() {
                a.chunks.push(new_chunk());
            }
            id
        }
    };
    let slot = a.slot(id);
    slot.clear();
    SlotRef { id, slot }
}

/// Returns a slot for reuse. The caller guarantees no JS instance will write to it again.
pub fn free(s: SlotRef) {
    s.slot.clear();
    lock().free.push(s.id);
}

/// The process slot (slot 0).
pub fn process_slot() -> &'static Slot {
    let mut a = lock();
    a.ensure_chunk0();
    a.slot(0)
}

/// Start and length (in i32) of chunk `i`, for mapping it into JavaScript.
pub fn chunk(i: u32) -> Option<(*mut i32, usize)> {
    let mut a = lock();
    a.ensure_chunk0();
    a.chunks.get(i as usize).map(|c| (c.as_ptr() as *mut i32, CHUNK_I32))
}

pub fn chunk_count() -> u32 {
    let mut a = lock();
    a.ensure_chunk0();
    a.chunks.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_aligned_and_reused() {
        let a = alloc();
        let b = alloc();
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, 0);
        assert_eq!(a.slot as *const Slot as usize % 128, 0);
        a.slot.get(3).store(7, Ordering::Relaxed);
        a.slot.store_f64(layout::NEXT_ATTEMPT, 1.5);
        assert_eq!(a.slot.load_f64(layout::NEXT_ATTEMPT), 1.5);
        let id = a.id;
        free(a);
        let c = alloc();
        assert_eq!(c.id, id);
        assert_eq!(c.slot.get(3).load(Ordering::Relaxed), 0, "a reused slot starts zeroed");
        for _ in 0..600 {
            alloc(); // grows past the first chunks
        }
        assert!(chunk_count() >= 3);
    }
}
