//! What the requests in flight of one session hold, counted so a plugin cannot make the
//! host hold more than its caps: one [`Permit`] per request (outstanding until its response
//! body ends or is dropped), its request body's bytes counted as they arrive
//! ([`CountedBody`]), the response body holding the permit ([`HeldBody`]), and the size of
//! a response's header section in wasi-http's accounting ([`header_bytes`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// What the requests in flight of one session (one instance: its requests end with its
/// store) hold.
#[derive(Debug, Default)]
pub(super) struct HttpBudget {
    outstanding: AtomicUsize,
    body_bytes: AtomicU64,
}

/// One request in flight: counted in its session's budget until dropped (with the response
/// future, or the response body once read to its end or dropped).
pub(super) struct Permit {
    budget: Arc<HttpBudget>,
    body_bytes: AtomicU64,
}

impl Permit {
    pub(super) fn acquire(budget: &Arc<HttpBudget>, max: usize) -> Option<Arc<Self>> {
        budget
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Arc::new(Self {
            budget: budget.clone(),
            body_bytes: AtomicU64::new(0),
        }))
    }

    /// Counts `n` more body bytes, unless the session's total would pass `max`.
    pub(super) fn reserve(&self, n: u64, max: u64) -> bool {
        let ok = self
            .budget
            .body_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_add(n).filter(|&t| t <= max)
            })
            .is_ok();
        if ok {
            self.body_bytes.fetch_add(n, Ordering::AcqRel);
        }
        ok
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.budget
            .body_bytes
            .fetch_sub(self.body_bytes.load(Ordering::Acquire), Ordering::AcqRel);
    }
}

/// A request body whose bytes are counted against the session's budget as they arrive.
pub(super) struct CountedBody {
    pub(super) inner: WasiBody,
    pub(super) permit: Arc<Permit>,
    pub(super) max: u64,
}

impl Body for CountedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
            && !self.permit.reserve(data.len() as u64, self.max)
        {
            return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(self.max)))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as outstanding until it ends or is
/// dropped.
pub(super) struct HeldBody {
    pub(super) inner: WasiBody,
    pub(super) permit: Option<Arc<Permit>>,
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) || self.inner.is_end_stream() {
            self.permit = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Size of a header section in wasi-http's `fields` accounting.
pub(super) fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| {
            name.as_str().len()
                + size_of::<http::HeaderName>()
                + value.len()
                + size_of::<http::HeaderValue>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_requests_and_body_bytes_until_dropped() {
        let budget = Arc::<HttpBudget>::default();
        let a = Permit::acquire(&budget, 2).unwrap();
        let b = Permit::acquire(&budget, 2).unwrap();
        assert!(Permit::acquire(&budget, 2).is_none());
        assert!(a.reserve(10, 25));
        assert!(b.reserve(15, 25));
        assert!(!b.reserve(1, 25));
        drop(a);
        assert_eq!(budget.outstanding.load(Ordering::Acquire), 1);
        assert_eq!(budget.body_bytes.load(Ordering::Acquire), 15);
        assert!(Permit::acquire(&budget, 2).is_some());
        drop(b);
        assert_eq!(budget.body_bytes.load(Ordering::Acquire), 0);
        assert_eq!(budget.outstanding.load(Ordering::Acquire), 0);
    }
}
