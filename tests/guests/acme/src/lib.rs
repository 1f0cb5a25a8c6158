//! A plugin of a made-up second vendor, Acme: proof that the host is vendor-neutral.
//! It declares its own manifest (settings `acme-base`, `acme-region`, `user-agent`; route
//! `standard`) and reports what the host handed it:
//! - `status`: `tier-name` is the configuration it was given (`wasi:config/store`
//!   `get-all`, sorted, `key=value` joined by `;`);
//! - `models`: a GET of `{acme-base}/models`, answering one model named after the status
//!   upstream sent (`acme/status-<n>`), or `denied-by-sandbox` naming the URL. Two more
//!   routes test the host's memory bounds with a plugin an operator can trust: `bulk`
//!   answers a catalogue of 600,000 tiny models built in the instance, and `cached` fills a
//!   48 MiB cache the instance keeps (as a plugin caching catalogues would) and answers
//!   one model;
//! - `chat`: a GET of the URL in the first message's text, answered as `invalid-input`
//!   `allowed:<status>` or `denied` (a test fixture, not an API).

#[cfg(target_arch = "wasm32")]
mod component {
    mod bindings {
        wit_bindgen::generate!({
            path: "../../../wit",
            world: "provider-plugin",
            with: {
                "wasi:http/types@0.2.12": wasip2::http::types,
                "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
                "wasi:io/poll@0.2.12": wasip2::io::poll,
                "wasi:io/error@0.2.12": wasip2::io::error,
                "wasi:io/streams@0.2.12": wasip2::io::streams,
                "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
                "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
                "wasi:random/random@0.2.12": wasip2::random::random,
                "wasi:config/store@0.2.0-rc.1": generate,
            },
        });
    }

    use bindings::exports::model_provider::plugin::model_provider::{
        ChatStream, Guest, GuestChatStream,
    };
    use bindings::model_provider::plugin::types::*;
    use bindings::wasi::config::store;

    const DEFAULT_BASE: &str = "https://api.acme.example/v1";

    /// The `cached` route's cache, kept as long as the instance.
    static CACHE: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

    fn list(route: &str, models: Vec<Model>) -> ModelList {
        ModelList {
            route: route.into(),
            default_model_id: models.first().map(|m| m.id.clone()).unwrap_or_default(),
            models,
            media_models: Vec::new(),
            bills: "Acme's invoice".into(),
            cached: false,
            fetched_at: 0,
        }
    }

    struct Acme;

    fn setting(key: &str, env: &str, default: &str, kind: SettingKind) -> Setting {
        Setting {
            key: key.into(),
            env: Some(env.into()),
            description: format!("Acme's {key}"),
            default_value: default.into(),
            kind,
            route: None,
        }
    }

    fn config() -> Vec<(String, String)> {
        let mut all = store::get_all().unwrap_or_default();
        all.sort();
        all
    }

    /// `Ok(status)` when the request went out, `Err(())` when the sandbox refused it.
    fn get(url: &str) -> Result<Result<u16, String>, ()> {
        use wasip2::http::outgoing_handler::handle;
        use wasip2::http::types::{ErrorCode, Fields, OutgoingBody, OutgoingRequest, Scheme};
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let req = OutgoingRequest::new(Fields::new());
        let _ = req.set_scheme(Some(&if scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        }));
        let _ = req.set_authority(Some(authority));
        let _ = req.set_path_with_query(Some(if path.is_empty() { "/" } else { path }));
        let body = req.body().expect("body");
        let fut = match handle(req, None) {
            Ok(f) => f,
            Err(ErrorCode::HttpRequestDenied) => return Err(()),
            Err(e) => return Ok(Err(format!("{e:?}"))),
        };
        let _ = OutgoingBody::finish(body, None);
        fut.subscribe().block();
        match fut.get() {
            Some(Ok(Ok(r))) => Ok(Ok(r.status())),
            Some(Ok(Err(ErrorCode::HttpRequestDenied))) => Err(()),
            Some(Ok(Err(e))) => Ok(Err(format!("{e:?}"))),
            _ => Ok(Err("no response".into())),
        }
    }

    fn nothing<T>() -> Result<T, ProviderError> {
        Err(ProviderError::InvalidInput(
            "not offered by the Acme test plugin".into(),
        ))
    }

    impl Guest for Acme {
        type ChatStream = NoStream;

        fn manifest() -> PluginManifest {
            PluginManifest {
                id: "acme".into(),
                display_name: "Acme (test vendor)".into(),
                settings: vec![
                    setting(
                        "acme-base",
                        "ACME_BASE",
                        DEFAULT_BASE,
                        SettingKind::Endpoint,
                    ),
                    setting("acme-region", "ACME_REGION", "eu", SettingKind::Text),
                    Setting {
                        key: "user-agent".into(),
                        env: None,
                        description: "the host's name".into(),
                        default_value: "acme-plugin".into(),
                        kind: SettingKind::Text,
                        route: None,
                    },
                ],
                routes: vec![
                    RouteInfo {
                        name: "standard".into(),
                        description: "Acme's main route".into(),
                        credential: CredentialKind::ApiKey,
                        model_prefix: "acme/".into(),
                    },
                    RouteInfo {
                        name: "bulk".into(),
                        description: "a catalogue of 600,000 models".into(),
                        credential: CredentialKind::ApiKey,
                        model_prefix: "acme-bulk/".into(),
                    },
                    RouteInfo {
                        name: "cached".into(),
                        description: "a 48 MiB cache kept in the instance".into(),
                        credential: CredentialKind::ApiKey,
                        model_prefix: "acme-cached/".into(),
                    },
                ],
            }
        }

        fn status() -> Result<ConnectionStatus, ProviderError> {
            let handed: Vec<String> = config().iter().map(|(k, v)| format!("{k}={v}")).collect();
            Ok(ConnectionStatus {
                connected: false,
                tier: None,
                tier_name: Some(handed.join(";")),
                subscription: None,
                expires_at: None,
                default_model_id: Some("acme/one".into()),
                models: Vec::new(),
                default_route: "standard".into(),
                api_key_stored: false,
                routes: Vec::new(),
            })
        }

        fn start() -> Result<DevicePrompt, ProviderError> {
            nothing()
        }

        fn poll(_pending_id: Option<String>) -> Result<PollOutcome, ProviderError> {
            nothing()
        }

        fn logout() -> Result<LogoutReport, ProviderError> {
            nothing()
        }

        fn refresh() -> Result<ConnectionStatus, ProviderError> {
            nothing()
        }

        fn models(_force: bool, route: Option<String>) -> Result<ModelList, ProviderError> {
            match route.as_deref() {
                Some("bulk") => {
                    let model = |i: usize| Model {
                        id: format!("acme-bulk/m{i}"),
                        route: "bulk".into(),
                        lane: Lane::ChatCompletions,
                        owned_by: None,
                        created: None,
                    };
                    return Ok(list("bulk", (0..600_000).map(model).collect()));
                }
                Some("cached") => {
                    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
                    // Written, so that every page is really held.
                    cache.resize(48 << 20, 0xac);
                    let one = Model {
                        id: "acme-cached/one".into(),
                        route: "cached".into(),
                        lane: Lane::ChatCompletions,
                        owned_by: None,
                        created: None,
                    };
                    return Ok(list("cached", vec![one]));
                }
                _ => {}
            }
            let base = store::get("acme-base")
                .ok()
                .flatten()
                .unwrap_or_else(|| DEFAULT_BASE.into());
            let url = format!("{base}/models");
            match get(&url) {
                Err(()) => Err(ProviderError::DeniedBySandbox(url)),
                Ok(Err(e)) => Err(ProviderError::Network(e)),
                Ok(Ok(status)) => Ok(list(
                    "standard",
                    vec![Model {
                        id: format!("acme/status-{status}"),
                        route: "standard".into(),
                        lane: Lane::ChatCompletions,
                        owned_by: Some("acme".into()),
                        created: None,
                    }],
                )),
            }
        }

        fn chat(request: ChatRequest) -> Result<ChatReply, ProviderError> {
            let url: String = request
                .messages
                .first()
                .and_then(|m| m.content.first())
                .and_then(|p| match p {
                    ContentPart::Text(t) => Some(t.clone()),
                    ContentPart::Image(_) => None,
                })
                .unwrap_or_default();
            let verdict = match get(url.trim()) {
                Err(()) => "denied".to_owned(),
                Ok(Ok(status)) => format!("allowed:{status}"),
                Ok(Err(e)) => format!("allowed:error:{e}"),
            };
            Err(ProviderError::InvalidInput(verdict))
        }

        fn set_api_key(_key: String) -> Result<ApiKeyInfo, ProviderError> {
            nothing()
        }

        fn api_key_status() -> Result<ApiKeyInfo, ProviderError> {
            Ok(ApiKeyInfo {
                stored: false,
                last_four: None,
            })
        }

        fn delete_api_key() -> Result<ApiKeyInfo, ProviderError> {
            Self::api_key_status()
        }

        fn usage(route: Option<String>) -> Result<QuotaReport, ProviderError> {
            Ok(QuotaReport {
                route: route.unwrap_or_else(|| "standard".into()),
                percent_used: None,
                period: None,
                period_start: None,
                resets_at: None,
                on_demand_cap_cents: None,
                on_demand_used_cents: None,
                prepaid_balance_cents: None,
                credits: None,
                detail: "Acme reports no quota".into(),
                fetched_at: 0,
            })
        }
    }

    struct NoStream;

    impl GuestChatStream for NoStream {
        fn open(_request: ChatRequest) -> Result<ChatStream, ProviderError> {
            nothing()
        }

        fn next(&self) -> Result<Option<ChatChunk>, ProviderError> {
            Ok(None)
        }
    }

    bindings::export!(Acme with_types_in bindings);
}
