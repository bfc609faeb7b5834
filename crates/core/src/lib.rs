//! breakwater's core: a circuit breaker that knows nothing of N-API.
//!
//! - `config.rs`: the numeric options of a circuit.
//! - `window.rs`: count and time windows, O(1) per call, fixed memory.
//! - `histogram.rs`: the fixed-size latency histogram.
//! - `window_latency.rs`: a time window's histograms, one per bucket, in one matrix.
//! - `state_machine.rs`: CLOSED / OPEN / HALF_OPEN, the rules, probe accounting.
//! - `arena.rs`: the memory shared with JavaScript (the hot path's view of a circuit).
//! - `ticker.rs`: the coarse clock in that memory.
//! - `registry.rs`: one circuit per name per process, and the lanes that feed it.
//!
//! How a call flows: the JS layer reads the circuit's mode word with `Atomics.load`. In
//! CLOSED it runs the action and, on success, bumps its own lane's counter — no native call.
//! Failures, half-open probes, slow calls and the end of a time bucket cross into native code,
//! which drains every lane, applies the rules and publishes the new mode.

pub mod arena;
pub mod carries;
pub mod config;
pub mod histogram;
pub mod registry;
pub mod state_machine;
pub mod ticker;
pub mod window;
pub mod window_latency;

pub use config::{Backoff, Config, WindowKind};
pub use state_machine::{Circuit, Outcome, Permit, Reason, State, Stats, Transition};
