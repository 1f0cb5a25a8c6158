//! In-memory effects: a scripted transport that records requests, a memory store with
//! named locks, and a settable clock that records sleeps.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use grok_provider_core::io::{
    Clock, HttpRequest, HttpResponse, ResponseBody, SecretStore, StoreError, Transport,
    TransportError,
};

// ----- body ------------------------------------------------------------------------------

/// A body made of scripted chunks (or a transport error).
pub struct FakeBody(VecDeque<Result<Vec<u8>, TransportError>>);

impl FakeBody {
    pub fn chunks<I: IntoIterator<Item = Vec<u8>>>(chunks: I) -> Self {
        FakeBody(chunks.into_iter().map(Ok).collect())
    }
    pub fn bytes(b: &[u8]) -> Self {
        Self::chunks([b.to_vec()])
    }
    /// Some chunks, then a reset.
    pub fn broken(chunks: Vec<Vec<u8>>) -> Self {
        let mut q: VecDeque<_> = chunks.into_iter().map(Ok).collect();
        q.push_back(Err(TransportError::Failed("connection reset".into())));
        FakeBody(q)
    }
}

impl ResponseBody for FakeBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        self.0.pop_front().transpose()
    }
}

pub fn response(status: u16, headers: &[(&str, &str)], body: FakeBody) -> HttpResponse<FakeBody> {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

// ----- transport -------------------------------------------------------------------------

type Handler = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse<FakeBody>, TransportError>>;

#[derive(Default)]
struct TransportInner {
    script: VecDeque<Handler>,
    requests: Vec<HttpRequest>,
}

/// Answers requests in script order; panics on an unscripted request.
#[derive(Clone, Default)]
pub struct FakeTransport(Rc<RefCell<TransportInner>>);

impl FakeTransport {
    pub fn push(
        &self,
        h: impl FnMut(&HttpRequest) -> Result<HttpResponse<FakeBody>, TransportError> + 'static,
    ) {
        self.0.borrow_mut().script.push_back(Box::new(h));
    }
    /// Answer with a status and a body.
    pub fn reply(&self, status: u16, body: &str) {
        self.reply_h(status, &[], body);
    }
    pub fn reply_h(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let body = body.as_bytes().to_vec();
        self.push(move |_| {
            Ok(HttpResponse {
                status,
                headers: headers.clone(),
                body: FakeBody::bytes(&body),
            })
        });
    }
    pub fn json(&self, status: u16, v: serde_json::Value) {
        self.reply(status, &v.to_string());
    }
    pub fn fail(&self, e: TransportError) {
        self.push(move |_| Err(e.clone()));
    }
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.0.borrow().requests.clone()
    }
    pub fn count(&self) -> usize {
        self.0.borrow().requests.len()
    }
    pub fn unused(&self) -> usize {
        self.0.borrow().script.len()
    }
}

impl Transport for FakeTransport {
    type Body = FakeBody;
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse<FakeBody>, TransportError> {
        let handler = {
            let mut inner = self.0.borrow_mut();
            inner.requests.push(request.clone());
            inner.script.pop_front()
        };
        let mut h = handler
            .unwrap_or_else(|| panic!("unscripted request: {:?} {}", request.method, request.url));
        h(&request)
    }
}

// ----- store -----------------------------------------------------------------------------

type LockHook = Box<dyn FnMut(&mut BTreeMap<String, Vec<u8>>)>;

#[derive(Default)]
struct StoreInner {
    map: BTreeMap<String, Vec<u8>>,
    held: BTreeSet<String>,
    locks_taken: Vec<String>,
    on_lock: Option<LockHook>,
}

/// A memory store. Locks are named flags: taking a held lock fails (so nested use of the
/// same lock shows up as an error instead of a deadlock).
#[derive(Clone, Default)]
pub struct MemoryStore(Rc<RefCell<StoreInner>>);

pub struct MemoryGuard {
    store: Rc<RefCell<StoreInner>>,
    name: String,
}

impl Drop for MemoryGuard {
    fn drop(&mut self) {
        self.store.borrow_mut().held.remove(&self.name);
    }
}

fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Failed(format!("invalid key {key:?}")))
    }
}

impl MemoryStore {
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().map.get(key).cloned()
    }
    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        self.raw(key).map(|b| serde_json::from_slice(&b).unwrap())
    }
    pub fn put(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().map.insert(key.into(), value.to_vec());
    }
    pub fn keys(&self) -> Vec<String> {
        self.0.borrow().map.keys().cloned().collect()
    }
    pub fn locks_taken(&self) -> Vec<String> {
        self.0.borrow().locks_taken.clone()
    }
    pub fn any_lock_held(&self) -> bool {
        !self.0.borrow().held.is_empty()
    }
    /// Run `hook` (once) when the next lock is taken: "another process" acting while we waited.
    pub fn on_next_lock(&self, hook: impl FnMut(&mut BTreeMap<String, Vec<u8>>) + 'static) {
        self.0.borrow_mut().on_lock = Some(Box::new(hook));
    }
}

impl SecretStore for MemoryStore {
    type Guard = MemoryGuard;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        Ok(self.raw(key))
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.put(key, value);
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.0.borrow_mut().map.remove(key);
        Ok(())
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .0
            .borrow()
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn lock(&mut self, name: &str, _timeout_ms: u32) -> Result<MemoryGuard, StoreError> {
        check_key(name)?;
        let hook = {
            let mut inner = self.0.borrow_mut();
            if inner.held.contains(name) {
                return Err(StoreError::LockTimeout(format!("{name} is held")));
            }
            inner.locks_taken.push(name.to_owned());
            inner.on_lock.take()
        };
        if let Some(mut hook) = hook {
            hook(&mut self.0.borrow_mut().map);
        }
        self.0.borrow_mut().held.insert(name.to_owned());
        Ok(MemoryGuard {
            store: self.0.clone(),
            name: name.to_owned(),
        })
    }
}

// ----- clock -----------------------------------------------------------------------------

struct ClockInner {
    now: Cell<u64>,
    sleeps: RefCell<Vec<u64>>,
    counter: Cell<u8>,
}

/// Settable time; `sleep_ms` advances it and is recorded.
#[derive(Clone)]
pub struct FakeClock(Rc<ClockInner>);

impl FakeClock {
    pub fn at(ms: u64) -> Self {
        FakeClock(Rc::new(ClockInner {
            now: Cell::new(ms),
            sleeps: RefCell::new(vec![]),
            counter: Cell::new(0),
        }))
    }
    pub fn now(&self) -> u64 {
        self.0.now.get()
    }
    pub fn set(&self, ms: u64) {
        self.0.now.set(ms);
    }
    pub fn advance(&self, ms: u64) {
        self.0.now.set(self.0.now.get() + ms);
    }
    pub fn sleeps(&self) -> Vec<u64> {
        self.0.sleeps.borrow().clone()
    }
}

impl Clock for FakeClock {
    fn now_unix_ms(&self) -> u64 {
        self.0.now.get()
    }
    fn sleep_ms(&self, ms: u64) {
        self.0.sleeps.borrow_mut().push(ms);
        self.advance(ms);
    }
    fn random_bytes(&self, out: &mut [u8]) {
        // Distinct per call, deterministic.
        let c = self.0.counter.get().wrapping_add(1);
        self.0.counter.set(c);
        for (i, b) in out.iter_mut().enumerate() {
            *b = c.wrapping_mul(31).wrapping_add(i as u8);
        }
    }
}
