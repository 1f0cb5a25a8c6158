//! The environment's proxy settings, checked before a runtime relies on them: hyper-util's
//! `Matcher::from_env` reads the variables, this says when they cannot be honoured.

/// The proxy variables the pool honours (`hyper-util`'s `Matcher::from_env` reads these).
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Why the environment's proxy settings cannot be used, if they cannot. Only `http://`
/// proxies are supported: a tunnel through an `https://` proxy would send `CONNECT` and
/// `Proxy-Authorization` in cleartext to a server expecting TLS, and SOCKS is not spoken,
/// so both are refused rather than mishandled. The message never repeats credentials.
pub fn proxy_env_problem() -> Option<String> {
    proxy_problem(|name| std::env::var(name).ok())
}

fn proxy_problem(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    for name in PROXY_VARS {
        let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let value = value.trim();
        // curl takes a bare host:port as http.
        let scheme = value.split_once("://").map_or("http", |(s, _)| s);
        if !scheme.eq_ignore_ascii_case("http") {
            return Some(format!(
                "{name} uses a {scheme}:// proxy: only http:// proxies are supported (https is tunnelled through them with TLS end to end)"
            ));
        }
        let with_scheme = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        // Credentials are not an authority `http::Uri` accepts: check what follows them.
        let without_userinfo = match with_scheme.split_once("://") {
            Some((s, rest)) => {
                let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{s}://{host}/{path}")
            }
            None => with_scheme.clone(),
        };
        if without_userinfo
            .parse::<http::Uri>()
            .map_or(true, |u| u.host().is_none())
        {
            return Some(format!("{name} is not a usable proxy URL"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::proxy_problem;

    #[test]
    fn proxy_schemes_other_than_http_are_refused() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(proxy_problem(env(&[])), None);
        assert_eq!(
            proxy_problem(env(&[("HTTPS_PROXY", "http://user:pw@proxy:3128")])),
            None
        );
        assert_eq!(
            proxy_problem(env(&[("https_proxy", "proxy.local:8080")])),
            None
        );
        let https =
            proxy_problem(env(&[("HTTPS_PROXY", "https://user:secretpw@proxy:443")])).unwrap();
        assert!(
            https.contains("https://") && !https.contains("secretpw"),
            "{https}"
        );
        let socks = proxy_problem(env(&[("ALL_PROXY", "socks5://proxy:1080")])).unwrap();
        assert!(socks.contains("socks5"), "{socks}");
        assert!(proxy_problem(env(&[("HTTP_PROXY", "http://")])).is_some());
    }
}
