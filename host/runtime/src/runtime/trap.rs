//! What a failed call becomes: the wasmtime error of a trap or a refused instantiation
//! classified into the host's typed errors (pool exhausted, memory or resource limit, call
//! timeout, plugin trap).

use std::time::Duration;

use wasmtime::component::ResourceTableError;
use wasmtime::{PoolConcurrencyLimitError, Trap};

use crate::error::HostError;
use crate::limits::{MemoryBudgetExceeded, MemoryLimitExceeded};

pub(super) fn classify_trap(e: wasmtime::Error, call_timeout: Duration) -> HostError {
    if let Some(p) = e.downcast_ref::<PoolConcurrencyLimitError>() {
        return HostError::PoolExhausted(format!(
            "too many live sessions in this process ({p}); drop idle sessions or raise \
             InstanceAllocation::Pooling::max_live_instances"
        ));
    }
    if let Some(b) = e.downcast_ref::<MemoryBudgetExceeded>() {
        return HostError::PoolExhausted(format!(
            "{b}: retry shortly, or raise Limits::memory_budget_bytes"
        ));
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return HostError::MemoryLimit(m.to_string());
    }
    if let Some(ResourceTableError::Full) = e.downcast_ref::<ResourceTableError>() {
        return HostError::ResourceLimit(format!(
            "the session holds the most resources it may ({e:#})"
        ));
    }
    // A `fields` past `HttpLimits::max_fields_bytes` (or `HeaderMap`'s entry limit): wasi-http
    // 0.2 has no header error for it, so it traps.
    if let Some(
        f @ (wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
        | wasmtime_wasi_http::FieldMapError::TooManyFields),
    ) = e.downcast_ref::<wasmtime_wasi_http::FieldMapError>()
    {
        return HostError::ResourceLimit(format!("{f} (a plugin's fields are capped)"));
    }
    // `MemoryCap`'s instance, memory and table counts, refused by wasmtime with this text.
    let text = format!("{e:#}");
    // wasmtime's hostcall fuel (`Limits::max_lifted_bytes`), whose error type is private.
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return HostError::ResourceLimit(format!(
            "the plugin handed the host more data in one call than a session may \
             (Limits::max_lifted_bytes): {text}"
        ));
    }
    if text.contains("resource limit exceeded") {
        return HostError::ResourceLimit(text);
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return HostError::CallTimeout(call_timeout);
    }
    HostError::PluginTrap(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::ErrorCode;

    #[test]
    fn a_full_memory_budget_is_the_hosts_capacity_not_the_plugins_fault() {
        let e = wasmtime::Error::new(MemoryBudgetExceeded {
            asked: 1 << 20,
            limit: 384 << 20,
        });
        let err = classify_trap(e, Duration::from_secs(1));
        assert_eq!(err.code(), ErrorCode::PoolExhausted);
        assert_eq!(err.code().http_status(), 503);
        assert_eq!(err.retry_after_seconds(), Some(1));
        assert!(err.to_string().contains("memory budget"), "{err}");
    }
}
