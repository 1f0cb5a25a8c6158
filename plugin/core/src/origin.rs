//! The one URL parser of the plugin: a tiny, strict reader of absolute `http(s)` URLs,
//! enough to decide which hosts the provider trusts and to address a request (the `url`
//! crate's IDNA tables would triple the component's size). The settings, discovery, the
//! device flow and the component's transport all use it.

/// Scheme, host and port of an absolute `http`/`https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https` (lower-case).
    pub scheme: String,
    /// Host, lower-case; IPv6 literals keep their brackets (`[::1]`).
    pub host: String,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

/// An absolute `http(s)` URL taken apart for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Its origin.
    pub origin: Origin,
    /// The authority as written (`host` or `host:port`), for the request line.
    pub authority: String,
    /// Path and query, `/` at least; the fragment is dropped (it is never sent).
    pub path_with_query: String,
}

impl Url {
    /// Parse `url`; `None` for anything [`Origin::parse`] refuses.
    pub fn parse(url: &str) -> Option<Url> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inner, after) = v6.split_once(']')?;
            if inner.is_empty()
                || !inner
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return None;
            }
            (
                format!("[{}]", inner.to_ascii_lowercase()),
                parse_port(after, default_port)?,
            )
        } else {
            let (host, after) = match authority.find(':') {
                Some(i) => (&authority[..i], &authority[i..]),
                None => (authority, ""),
            };
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
            if !ok {
                return None;
            }
            (host.to_ascii_lowercase(), parse_port(after, default_port)?)
        };
        let tail = tail.split('#').next().unwrap_or_default();
        let path_with_query = match tail {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Some(Url {
            origin: Origin { scheme, host, port },
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

impl Origin {
    /// Parse the origin of `url`. `None` for anything but a plain absolute `http(s)` URL:
    /// user info (`user@host`), empty or odd host characters and bad ports are refused, so
    /// that nothing parses differently here than in a browser.
    pub fn parse(url: &str) -> Option<Origin> {
        Url::parse(url).map(|u| u.origin)
    }

    /// Whether the host is the local machine (`127.0.0.0/8`, `localhost`, `[::1]`), the
    /// same rule as the host's configuration check.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether this is an `https` origin on `x.ai` or one of its subdomains.
    pub fn is_xai_https(&self) -> bool {
        self.scheme == "https" && (self.host == "x.ai" || self.host.ends_with(".x.ai"))
    }

    /// Whether a user may be sent here: `https`, or `http` on the loopback interface.
    pub fn is_browser_safe(&self) -> bool {
        self.scheme == "https" || (self.scheme == "http" && self.is_loopback())
    }
}

/// `""` -> default, `":443"` -> 443; anything else -> `None`.
fn parse_port(after_host: &str, default_port: u16) -> Option<u16> {
    if after_host.is_empty() {
        return Some(default_port);
    }
    let digits = after_host.strip_prefix(':')?;
    if digits.is_empty() {
        return Some(default_port);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(url: &str) -> Option<(String, String, u16)> {
        Origin::parse(url).map(|o| (o.scheme, o.host, o.port))
    }

    #[test]
    fn parses_plain_urls() {
        assert_eq!(
            o("https://auth.x.ai"),
            Some(("https".into(), "auth.x.ai".into(), 443))
        );
        assert_eq!(
            o("HTTPS://Auth.X.AI/oauth2/token?x=1"),
            Some(("https".into(), "auth.x.ai".into(), 443))
        );
        assert_eq!(
            o("http://127.0.0.1:8080/x"),
            Some(("http".into(), "127.0.0.1".into(), 8080))
        );
        assert_eq!(
            o("http://[::1]:9/x"),
            Some(("http".into(), "[::1]".into(), 9))
        );
        assert_eq!(
            o("http://localhost:/x"),
            Some(("http".into(), "localhost".into(), 80))
        );
        assert_eq!(
            o("https://a.b#frag"),
            Some(("https".into(), "a.b".into(), 443))
        );
    }

    #[test]
    fn refuses_odd_urls() {
        for bad in [
            "ftp://x.ai/",
            "https://",
            "https:///path",
            "https://user@x.ai/",
            "https://x.ai@evil.com/",
            "https://x.ai\\evil.com/",
            "https://x.ai:99999/",
            "https://x.ai:12a/",
            "https://[zz]/",
            "//x.ai/",
            "x.ai",
            "https://ex ample.com/",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn takes_urls_apart_for_a_request() {
        let u = Url::parse("https://API.x.ai:8443/v1/billing?format=credits#x").unwrap();
        assert_eq!(
            (
                u.origin.host.as_str(),
                u.origin.port,
                u.authority.as_str(),
                u.path_with_query.as_str()
            ),
            (
                "api.x.ai",
                8443,
                "API.x.ai:8443",
                "/v1/billing?format=credits"
            )
        );
        assert_eq!(
            Url::parse("http://127.0.0.1:9").unwrap().path_with_query,
            "/"
        );
        assert_eq!(
            Url::parse("http://127.0.0.1:9?a=1")
                .unwrap()
                .path_with_query,
            "/?a=1"
        );
        assert_eq!(Url::parse("https://x.ai#f").unwrap().path_with_query, "/");
        assert!(Url::parse("https://x.ai@evil.com/").is_none());
    }

    #[test]
    fn classifies_hosts() {
        let x = Origin::parse("https://accounts.x.ai/device").unwrap();
        assert!(x.is_xai_https() && x.is_browser_safe() && !x.is_loopback());
        assert!(Origin::parse("https://x.ai").unwrap().is_xai_https());
        assert!(!Origin::parse("https://evilx.ai").unwrap().is_xai_https());
        assert!(
            !Origin::parse("https://x.ai.evil.com")
                .unwrap()
                .is_xai_https()
        );
        assert!(!Origin::parse("http://auth.x.ai").unwrap().is_xai_https());
        assert!(
            Origin::parse("http://localhost:1/")
                .unwrap()
                .is_browser_safe()
        );
        assert!(Origin::parse("http://[::1]/").unwrap().is_browser_safe());
        assert!(
            !Origin::parse("http://example.com/")
                .unwrap()
                .is_browser_safe()
        );
        // All of 127.0.0.0/8 is loopback, as the host's configuration check says.
        assert!(
            Origin::parse("http://127.0.0.2/")
                .unwrap()
                .is_browser_safe()
        );
        for remote in [
            "http://128.0.0.1/",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
        ] {
            assert!(
                !Origin::parse(remote).unwrap().is_browser_safe(),
                "{remote}"
            );
        }
    }
}
