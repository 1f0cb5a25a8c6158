//! Time and randomness from WASI.

use grok_provider_core::io::Clock;
use wasip2::clocks::{monotonic_clock, wall_clock};

/// `Clock` over `wasi:clocks` and `wasi:random`.
pub struct WasiClock;

impl Clock for WasiClock {
    fn now_unix_ms(&self) -> u64 {
        let now = wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn sleep_ms(&self, ms: u64) {
        monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    }

    fn random_bytes(&self, out: &mut [u8]) {
        let bytes = wasip2::random::random::get_random_bytes(out.len() as u64);
        out.copy_from_slice(&bytes[..out.len()]);
    }
}
