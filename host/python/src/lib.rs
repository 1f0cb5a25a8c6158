//! `provider_host._native`: the sandboxed plugin component in-process for Python, through
//! `provider-app` (the CLI's behaviour as a library), so that every call is the CLI's
//! subcommand of the same name: same state directory, tenant, secret backend, settings
//! from the environment, and the same JSON objects, returned as dicts.
//!
//! Every call releases the GIL while the plugin runs, on one process-wide tokio runtime;
//! a [`Host`] may be called from several threads at once (each call opens its own session
//! of the shared, compiled [`Runtime`]; the store's locks order writes between threads and
//! processes, the CLI's included).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use provider_app::chat::{
    ChatInput, StreamSummary, build_request, chunk_event, fill_default_model,
};
use provider_app::{PluginVars, Settings, Surface, render};
use provider_runtime::ChatStreamHandle;
use provider_runtime::bindings::types::{ChatRequest, Lane, ProviderError, ThinkingEffort};
use provider_runtime::{HostConfig, HostError, Runtime, Session};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use serde_json::Value;

/// The User-Agent of the plugin's requests.
const USER_AGENT: &str = concat!("provider-host-python/", env!("CARGO_PKG_VERSION"));

/// One runtime for every call of the process: calls from many Python threads block on it
/// at once (a current-thread runtime could be driven by one of them only).
fn tokio() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("provider-host")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn invalid(message: impl Into<String>) -> HostError {
    HostError::Provider(ProviderError::InvalidInput(message.into()))
}

/// One export call, with what it needs.
enum Call {
    Status,
    Start,
    Poll(Option<String>),
    Logout,
    Refresh,
    Models {
        force: bool,
        route: Option<String>,
    },
    Usage(Option<String>),
    KeySet(String),
    KeyStatus,
    KeyDelete,
    Chat(Box<ChatInput>),
    Doctor {
        with_chat: bool,
        routes: Vec<String>,
    },
}

impl Call {
    /// Routes the call enables besides the default (doctor's).
    fn routes(&self) -> &[String] {
        match self {
            Call::Doctor { routes, .. } => routes,
            _ => &[],
        }
    }

    /// The route the call names (enabled besides the default), before the model's prefix.
    fn route(&self) -> Option<&str> {
        match self {
            Call::Models { route, .. } | Call::Usage(route) => route.as_deref(),
            Call::Chat(input) => input.route.as_deref(),
            _ => None,
        }
    }

    fn model(&self) -> Option<&str> {
        match self {
            Call::Chat(input) => input.model.as_deref(),
            _ => None,
        }
    }
}

/// A host: settings for every call, and the compiled component once the first call ran.
///
/// `Host(state_dir=None, tenant=None, plugin=None, secrets_url=None, routes=None,
/// settings=None, allow_env=None, call_timeout_secs=None)`; what is not given comes from
/// the environment as the CLI reads it (`PROVIDER_HOST_STATE_DIR`,
/// `PROVIDER_HOST_SECRETS_URL`, the plugin's own variables such as `XAI_API_BASE`).
#[pyclass(frozen, module = "provider_host._native")]
struct Host {
    settings: Settings,
    /// Routes enabled besides the default for every call.
    routes: Vec<String>,
    /// The plugin's settings by their environment names, over the process environment.
    env: BTreeMap<String, String>,
    runtime: Mutex<Option<Runtime>>,
}

impl Host {
    fn runtime(&self) -> Result<Runtime, HostError> {
        let mut slot = lock(&self.runtime);
        if let Some(r) = &*slot {
            return Ok(r.clone());
        }
        let runtime = provider_app::runtime(&self.settings)?;
        *slot = Some(runtime.clone());
        Ok(runtime)
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .cloned()
            .or_else(|| provider_app::process_env(name))
    }

    /// A session of `tenant` (else the host's) with the call's routes enabled.
    async fn open(
        &self,
        tenant: Option<&str>,
        call: &Call,
        vars: &mut PluginVars,
    ) -> Result<(Session, Runtime), HostError> {
        let runtime = self.runtime()?;
        let manifest = runtime.manifest().await?;
        *vars = PluginVars::of(&manifest);
        let mut routes: Vec<&str> = self.routes.iter().map(String::as_str).collect();
        routes.extend(provider_app::chat_route(
            &manifest,
            call.route(),
            call.model(),
        ));
        routes.extend(call.routes().iter().map(String::as_str));
        let mut settings = self.settings.clone();
        if let Some(t) = tenant {
            settings.tenant = t.to_owned();
        }
        let config = HostConfig::new()?.with_user_agent(USER_AGENT);
        let lookup = |name: &str| self.lookup(name);
        let (session, _) =
            provider_app::open_session(&runtime, &settings, config, &routes, &lookup).await?;
        Ok((session, runtime))
    }

    /// Runs `call` for `tenant`: the CLI's success object, or its error object.
    fn run(&self, py: Python<'_>, tenant: Option<String>, call: Call) -> PyResult<Py<PyAny>> {
        let rt = tokio()?;
        let value = py.detach(|| {
            rt.block_on(async {
                let mut vars = PluginVars::default();
                match self.call(tenant.as_deref(), call, &mut vars).await {
                    Ok(v) => v,
                    Err(e) => provider_app::error_json(&e, &vars, Surface::Python),
                }
            })
        });
        to_py(py, &value).map(Bound::unbind)
    }

    async fn call(
        &self,
        tenant: Option<&str>,
        call: Call,
        vars: &mut PluginVars,
    ) -> Result<Value, HostError> {
        let (mut session, runtime) = self.open(tenant, &call, vars).await?;
        let s = &mut session;
        Ok(match call {
            Call::Status => render::status(&s.status().await?),
            Call::Start => render::prompt(&s.start().await?),
            Call::Poll(id) => render::poll(&s.poll(id.as_deref()).await?),
            Call::Logout => render::logout(&s.logout().await?),
            Call::Refresh => render::status(&s.refresh().await?),
            Call::Models { force, route } => {
                render::models(&s.models(force, route.as_deref()).await?)
            }
            Call::Usage(route) => render::quota(&s.usage(route.as_deref()).await?),
            Call::KeySet(key) => {
                let key = key.trim();
                if key.is_empty() {
                    return Err(invalid("no key given"));
                }
                render::key_info(&s.set_api_key(key).await?)
            }
            Call::KeyStatus => render::key_info(&s.api_key_status().await?),
            Call::KeyDelete => render::key_info(&s.delete_api_key().await?),
            Call::Chat(input) => {
                let (mut request, _) = build_request(&input)?;
                fill_default_model(s, &mut request).await?;
                render::reply(&s.chat(&request).await?)
            }
            Call::Doctor { with_chat, .. } => {
                let manifest = runtime.manifest().await?;
                provider_app::doctor::run(s, &manifest, with_chat, Surface::Python).await
            }
        })
    }

    /// Opens a streamed turn: the stream, or the error object it ends with at once.
    async fn open_stream(
        &self,
        tenant: Option<&str>,
        call: Call,
        mut request: ChatRequest,
        vars: &mut PluginVars,
    ) -> Result<StreamState, HostError> {
        let (mut session, _runtime) = self.open(tenant, &call, vars).await?;
        fill_default_model(&mut session, &mut request).await?;
        let handle = session.open_chat_stream(&request).await?;
        Ok(StreamState::Open {
            session: Box::new(session),
            handle,
            summary: StreamSummary::default(),
            vars: vars.clone(),
        })
    }
}

#[pymethods]
impl Host {
    #[new]
    #[pyo3(signature = (*, state_dir=None, tenant=None, plugin=None, secrets_url=None,
                        routes=None, settings=None, allow_env=None, call_timeout_secs=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        state_dir: Option<PathBuf>,
        tenant: Option<String>,
        plugin: Option<PathBuf>,
        secrets_url: Option<String>,
        routes: Option<Vec<String>>,
        settings: Option<BTreeMap<String, String>>,
        allow_env: Option<Vec<String>>,
        call_timeout_secs: Option<u64>,
    ) -> Self {
        let mut s = Settings::from_env();
        if state_dir.is_some() {
            s.state_dir = state_dir;
        }
        if let Some(t) = tenant {
            s.tenant = t;
        }
        s.plugin = plugin;
        if secrets_url.is_some() {
            s.secrets_url = secrets_url;
        }
        s.allow_env = allow_env.unwrap_or_default();
        s.call_timeout_secs = call_timeout_secs;
        Self {
            settings: s,
            routes: routes.unwrap_or_default(),
            env: settings.unwrap_or_default(),
            runtime: Mutex::new(None),
        }
    }

    /// The tenant calls use when they name none.
    #[getter]
    fn tenant(&self) -> &str {
        &self.settings.tenant
    }

    /// The state directory (`None` when none can be found).
    #[getter]
    fn state_dir(&self) -> Option<PathBuf> {
        self.settings.state_dir().ok()
    }

    #[pyo3(signature = (*, tenant=None))]
    fn status(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Status)
    }

    #[pyo3(signature = (*, tenant=None))]
    fn start(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Start)
    }

    #[pyo3(signature = (pending_id=None, *, tenant=None))]
    fn poll(
        &self,
        py: Python<'_>,
        pending_id: Option<String>,
        tenant: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Poll(pending_id))
    }

    #[pyo3(signature = (*, tenant=None))]
    fn logout(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Logout)
    }

    #[pyo3(signature = (*, tenant=None))]
    fn refresh(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Refresh)
    }

    #[pyo3(signature = (force=false, *, route=None, tenant=None))]
    fn models(
        &self,
        py: Python<'_>,
        force: bool,
        route: Option<String>,
        tenant: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Models { force, route })
    }

    #[pyo3(signature = (route=None, *, tenant=None))]
    fn usage(
        &self,
        py: Python<'_>,
        route: Option<String>,
        tenant: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::Usage(route))
    }

    #[pyo3(signature = (key, *, tenant=None))]
    fn key_set(&self, py: Python<'_>, key: String, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::KeySet(key))
    }

    #[pyo3(signature = (*, tenant=None))]
    fn key_status(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::KeyStatus)
    }

    #[pyo3(signature = (*, tenant=None))]
    fn key_delete(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, tenant, Call::KeyDelete)
    }

    /// One chat turn: the reply dict, or with `stream=True` (or `"stream": true` in a
    /// `request` body) a [`ChatStream`] of the CLI's stream events.
    #[pyo3(signature = (message=None, *, messages=None, request=None, model=None, route=None,
                        lane=None, thinking=None, system=None, max_output_tokens=None,
                        stream=false, tenant=None))]
    #[allow(clippy::too_many_arguments)]
    fn chat(
        &self,
        py: Python<'_>,
        message: Option<String>,
        messages: Option<Bound<'_, PyAny>>,
        request: Option<Bound<'_, PyAny>>,
        model: Option<String>,
        route: Option<String>,
        lane: Option<String>,
        thinking: Option<Bound<'_, PyAny>>,
        system: Option<String>,
        max_output_tokens: Option<u32>,
        stream: bool,
        tenant: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let input = match chat_input(
            message,
            messages,
            request,
            model,
            route,
            lane,
            thinking,
            system,
            max_output_tokens,
        ) {
            Ok(i) => i,
            Err(e) => return self.error(py, &e, stream),
        };
        let (request, body_stream) = match build_request(&input) {
            Ok(r) => r,
            Err(e) => return self.error(py, &e, stream),
        };
        let call = Call::Chat(Box::new(input));
        if !(stream || body_stream) {
            return self.run(py, tenant, call);
        }
        let rt = tokio()?;
        let state = py.detach(|| {
            rt.block_on(async {
                let mut vars = PluginVars::default();
                match self
                    .open_stream(tenant.as_deref(), call, request, &mut vars)
                    .await
                {
                    Ok(state) => state,
                    Err(e) => {
                        StreamState::Last(provider_app::error_json(&e, &vars, Surface::Python))
                    }
                }
            })
        });
        Ok(Py::new(
            py,
            ChatStream {
                state: Mutex::new(state),
            },
        )?
        .into_any())
    }

    /// The CLI's `doctor --json` report: `{"ok": bool, "checks": [{"name", "status",
    /// "detail", "fix"?}]}`; `with_chat=False` skips the minimal streamed turn per route.
    #[pyo3(signature = (with_chat=true, *, routes=None, tenant=None))]
    fn doctor(
        &self,
        py: Python<'_>,
        with_chat: bool,
        routes: Option<Vec<String>>,
        tenant: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let routes = routes.unwrap_or_default();
        self.run(py, tenant, Call::Doctor { with_chat, routes })
    }

    fn __repr__(&self) -> String {
        format!("Host(tenant={:?})", self.settings.tenant)
    }
}

impl Host {
    /// An error before any call: its dict, or for a stream an iterator that yields it.
    fn error(&self, py: Python<'_>, e: &HostError, stream: bool) -> PyResult<Py<PyAny>> {
        let value = provider_app::error_json(e, &PluginVars::default(), Surface::Python);
        if stream {
            let state = Mutex::new(StreamState::Last(value));
            Ok(Py::new(py, ChatStream { state })?.into_any())
        } else {
            to_py(py, &value).map(Bound::unbind)
        }
    }
}

/// The chat keywords as the library's input.
#[allow(clippy::too_many_arguments)]
fn chat_input(
    message: Option<String>,
    messages: Option<Bound<'_, PyAny>>,
    request: Option<Bound<'_, PyAny>>,
    model: Option<String>,
    route: Option<String>,
    lane: Option<String>,
    thinking: Option<Bound<'_, PyAny>>,
    system: Option<String>,
    max_output_tokens: Option<u32>,
) -> Result<ChatInput, HostError> {
    if messages.is_some() as u8 + request.is_some() as u8 + message.is_some() as u8 > 1 {
        return Err(invalid(
            "give one of message, messages and request, not several",
        ));
    }
    if request.is_some() && system.is_some() {
        return Err(invalid("system goes inside the request body's messages"));
    }
    if messages.is_none() && request.is_none() && message.is_none() {
        return Err(invalid("give a message, messages or a request"));
    }
    let lane = match lane.as_deref() {
        None => None,
        Some("chat_completions") => Some(Lane::ChatCompletions),
        Some("responses") => Some(Lane::Responses),
        Some(other) => {
            return Err(invalid(format!(
                "lane {other:?}: expected \"chat_completions\" or \"responses\""
            )));
        }
    };
    Ok(ChatInput {
        model,
        route,
        lane,
        thinking: thinking.map(|t| effort(&t)).transpose()?,
        system,
        messages: messages.map(|m| json_text(&m)).transpose()?,
        request: request.map(|r| json_text(&r)).transpose()?,
        max_output_tokens,
        message,
    })
}

/// `"low"`, `"medium"`, `"high"`, or the seed's `{"effort": "low"}`.
fn effort(value: &Bound<'_, PyAny>) -> Result<ThinkingEffort, HostError> {
    let text: Option<String> = match value.cast::<PyDict>() {
        Ok(d) => d
            .get_item("effort")
            .ok()
            .flatten()
            .and_then(|e| e.extract().ok()),
        Err(_) => value.extract().ok(),
    };
    match text.as_deref() {
        Some("low") => Ok(ThinkingEffort::Low),
        Some("medium") => Ok(ThinkingEffort::Medium),
        Some("high") => Ok(ThinkingEffort::High),
        _ => Err(invalid(
            "thinking: expected \"low\", \"medium\", \"high\" or {\"effort\": ...}",
        )),
    }
}

/// A JSON document given as text, or as Python values (`json.dumps` of them).
fn json_text(value: &Bound<'_, PyAny>) -> Result<String, HostError> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_string());
    }
    let dumped = value
        .py()
        .import("json")
        .and_then(|json| json.call_method1("dumps", (value,)))
        .and_then(|s| s.extract::<String>());
    dumped.map_err(|e| invalid(format!("not JSON-serialisable: {e}")))
}

/// Where a streamed turn is.
enum StreamState {
    Open {
        session: Box<Session>,
        handle: ChatStreamHandle,
        summary: StreamSummary,
        vars: PluginVars,
    },
    /// One object left to yield (the closing one or an error).
    Last(Value),
    Done,
}

/// A streamed chat turn: iterate for the CLI's `chat --stream --json` events (`{"delta":
/// ...}`, `{"reasoning_delta": ...}`, `{"tool_call": ...}`, `{"tool_call_arguments": ...}`,
/// `{"reasoning_item": ...}`), ending with `{"ok": True, "done": True, ...}` or an error
/// dict (`ok: False`). Each step releases the GIL.
#[pyclass(module = "provider_host._native")]
struct ChatStream {
    state: Mutex<StreamState>,
}

impl ChatStream {
    async fn next_value(state: &mut StreamState) -> Option<Value> {
        loop {
            match std::mem::replace(state, StreamState::Done) {
                StreamState::Done => return None,
                StreamState::Last(v) => return Some(v),
                StreamState::Open {
                    mut session,
                    handle,
                    mut summary,
                    vars,
                } => match session.next_chunk(&handle).await {
                    Ok(Some(chunk)) => {
                        summary.add(&chunk);
                        let event = chunk_event(&chunk);
                        *state = StreamState::Open {
                            session,
                            handle,
                            summary,
                            vars,
                        };
                        if event.is_some() {
                            return event;
                        }
                    }
                    Ok(None) => {
                        let _ = session.close_chat_stream(handle).await;
                        return Some(summary.done());
                    }
                    Err(e) => {
                        return Some(provider_app::error_json(&e, &vars, Surface::Python));
                    }
                },
            }
        }
    }
}

#[pymethods]
impl ChatStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let rt = tokio()?;
        let next = py.detach(|| {
            let mut state = lock(&self.state);
            rt.block_on(Self::next_value(&mut state))
        });
        match next {
            Some(v) => Ok(Some(to_py(py, &v)?.unbind())),
            None => Ok(None),
        }
    }

    /// Ends the stream early (the plugin's instance is dropped with it).
    fn close(&self) {
        *lock(&self.state) = StreamState::Done;
    }
}

/// A JSON value as plain Python objects (dict, list, str, int, float, bool, None).
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// The embedded component's size in bytes and SHA-256 (for `bench.py` and bug reports).
#[pyfunction]
fn component_info(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let v = serde_json::json!({
        "bytes": provider_app::component::embedded_len(),
        "sha256": provider_app::component::embedded_sha256(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    to_py(py, &v).map(Bound::unbind)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Host>()?;
    m.add_class::<ChatStream>()?;
    m.add_function(wrap_pyfunction!(component_info, m)?)?;
    Ok(())
}
