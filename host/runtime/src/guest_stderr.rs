//! The plugin's stderr, made safe to show: at most
//! [`Limits::stderr_bytes_per_call`](crate::limits::Limits::stderr_bytes_per_call) bytes per
//! export call, control characters (terminal escape sequences among them) removed, and
//! each line logged as a `plugin_stderr` event of the host's own log with the tenant, so
//! it can never pass for the host's output.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest line logged; longer lines are cut.
const LINE_BYTES: usize = 1024;

/// One session's stderr: its byte budget is reset by each export call.
#[derive(Clone)]
pub(crate) struct GuestStderr {
    tenant: Arc<str>,
    used: Arc<AtomicUsize>,
    /// Bytes allowed per export call.
    max: usize,
    line: Arc<Mutex<Vec<u8>>>,
}

impl GuestStderr {
    pub(crate) fn new(tenant: &str, used: Arc<AtomicUsize>, max: usize) -> Self {
        Self {
            tenant: tenant.into(),
            used,
            max,
            line: Arc::default(),
        }
    }

    fn emit(&self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let clean: String = text
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        tracing::warn!(target: "plugin_stderr", tenant = %self.tenant, "{}", clean.trim_end());
    }

    fn take(&self, buf: &[u8]) {
        let before = self.used.fetch_add(buf.len(), Ordering::Relaxed);
        let allowed = self.max.saturating_sub(before).min(buf.len());
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        for &b in &buf[..allowed] {
            if b == b'\n' {
                self.emit(&line);
                line.clear();
            } else if line.len() < LINE_BYTES {
                line.push(b);
            }
        }
        if allowed < buf.len() && before < self.max {
            if !line.is_empty() {
                self.emit(&line);
                line.clear();
            }
            tracing::warn!(
                target: "plugin_stderr",
                tenant = %self.tenant,
                "more than {} bytes of stderr in one call: the rest is dropped",
                self.max
            );
        }
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        // Accepted whole even when dropped: the guest must not block or fail on stderr.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::DEFAULT_STDERR_BYTES_PER_CALL;

    #[test]
    fn budget_lines_and_control_characters() {
        let used = Arc::new(AtomicUsize::new(0));
        let s = GuestStderr::new("t", used.clone(), DEFAULT_STDERR_BYTES_PER_CALL);
        s.take(b"hello \x1b[31mred\x1b[0m\npartial");
        assert_eq!(&*s.line.lock().unwrap(), b"partial");
        s.take(&vec![b'x'; DEFAULT_STDERR_BYTES_PER_CALL * 2]);
        // Nothing past the budget is buffered.
        assert!(s.line.lock().unwrap().len() <= LINE_BYTES);
        used.store(0, Ordering::Relaxed);
        s.take(b"\n");
        assert!(s.line.lock().unwrap().is_empty());
    }

    #[test]
    fn the_budget_is_the_sessions_limit() {
        let s = GuestStderr::new("t", Arc::new(AtomicUsize::new(0)), 8);
        s.take(b"0123");
        s.take(b"4567");
        // Past `Limits::stderr_bytes_per_call` (8 here) nothing more is kept.
        s.take(b"89");
        assert_eq!(&*s.line.lock().unwrap(), b"01234567");
    }
}
