//! Origins (scheme, host, port) as the sandbox compares them, the allowlist's entries, and
//! which addresses a plugin's own default endpoint may reach.

use std::fmt;

use crate::error::HostError;

/// An origin on a session's allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    /// The origin.
    pub origin: Origin,
    /// Set by the operator (an override, an explicit allowlist): it may be any address,
    /// loopback and private ones included, and plain http on loopback. Otherwise it is
    /// the plugin's own default, which may reach public addresses over https only.
    pub operator_set: bool,
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.origin.fmt(f)
    }
}

/// Which addresses a connection may reach: attached by the sandbox to every request it
/// lets through (as an `http` extension), honoured by the default pool on every address
/// it connects to after DNS. An embedder's own [`crate::HttpClient`] should honour it too
/// (a request without it is treated as [`Reach::Public`] by the default pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only ([`is_public_ip`]).
    Public,
    /// Any address (an endpoint the operator set).
    Any,
}

/// Whether `ip` is a public unicast address a plugin's own default may reach: not
/// loopback, private (RFC 1918, RFC 4193 ULA, 100.64/10 shared), link-local (including
/// the 169.254.169.254 metadata service), multicast, unspecified, broadcast, reserved or
/// documentation ranges, nor an IPv6 form embedding one of those (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4).
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    fn v4(ip: Ipv4Addr) -> bool {
        let [a, b, c, _] = ip.octets();
        !(a == 0 // "this network", 0.0.0.0
            || a == 10
            || a == 127
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
            || (a == 192 && b == 0 && c == 2)
            || (a == 198 && (b == 18 || b == 19)) // benchmarking
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113)
            || a >= 224) // multicast, reserved, broadcast
    }
    fn v6(ip: Ipv6Addr) -> bool {
        let s = ip.segments();
        if let Some(inner) = ip.to_ipv4_mapped() {
            return v4(inner);
        }
        // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96) and 6to4
        // (2002::/16) carry an IPv4 address a relay may reach.
        if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            let [a, b] = s[6].to_be_bytes();
            let [c, d] = s[7].to_be_bytes();
            return !ip.is_unspecified() && !ip.is_loopback() && v4(Ipv4Addr::new(a, b, c, d));
        }
        if s[0] == 0x2002 {
            let [a, b] = s[1].to_be_bytes();
            let [c, d] = s[2].to_be_bytes();
            return v4(Ipv4Addr::new(a, b, c, d));
        }
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || (s[0] & 0xfe00) == 0xfc00 // unique local
            || (s[0] & 0xffc0) == 0xfe80 // link-local
            || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
            || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
            || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
    }
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => v6(ip),
    }
}

/// URL scheme of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginScheme {
    /// TLS.
    Https,
    /// Plain HTTP: loopback only.
    Http,
}

/// A scheme, host and port, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Scheme.
    pub scheme: OriginScheme,
    /// Lower-case host (IPv6 in brackets).
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            OriginScheme::Https => "https",
            OriginScheme::Http => "http",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Origin {
    /// Parse the origin of an absolute URL; refuses non-http(s) schemes, userinfo, and
    /// plain http to anything but a loopback host.
    pub fn parse(url: &str) -> Result<Self, HostError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| HostError::Config(format!("{url:?}: not a URL ({e})")))?;
        Self::of_uri(&uri).map_err(|why| HostError::Config(format!("{url:?}: {why}")))
    }

    /// The origin of a request's URI (the sandbox's check of every outgoing request).
    pub fn of_uri(uri: &http::Uri) -> Result<Self, &'static str> {
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => OriginScheme::Https,
            Some("http") => OriginScheme::Http,
            Some(_) => return Err("only https (or http on loopback) is allowed"),
            None => return Err("not an absolute URL"),
        };
        let authority = uri.authority().ok_or("missing host")?;
        if authority.as_str().contains('@') {
            return Err("contains userinfo");
        }
        let host = authority.host();
        if host.is_empty() {
            return Err("missing host");
        }
        // `http::Uri` accepts `host:` (an empty port) and a port past 65535 (then `port()` is
        // `None`); an origin takes neither.
        let text = authority.as_str();
        let after_host = &text[text.rfind(']').map_or(0, |i| i + 1)..];
        let port = match authority.port() {
            Some(p) => p.as_u16(),
            None if after_host.contains(':') => return Err("bad port"),
            None => match scheme {
                OriginScheme::Https => 443,
                OriginScheme::Http => 80,
            },
        };
        let origin = Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        };
        if origin.scheme == OriginScheme::Http && !origin.is_loopback() {
            return Err(
                "plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost)",
            );
        }
        Ok(origin)
    }

    /// The host as an IP address, when it is one (IPv6 without its brackets).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// Why a plugin's own default may not reach this origin, if it may not: plain http,
    /// `localhost`, or an address that is not public ([`is_public_ip`]). A name is checked
    /// again on the addresses it resolves to, when connecting.
    pub fn default_refusal(&self) -> Option<&'static str> {
        if self.scheme == OriginScheme::Http {
            return Some("plain http only to an endpoint the operator set");
        }
        let host = self.host.trim_end_matches('.');
        if host == "localhost" || host.ends_with(".localhost") {
            return Some("a loopback name");
        }
        match self.ip() {
            Some(ip) if !is_public_ip(ip) => Some("not a public address"),
            _ => None,
        }
    }

    /// Whether the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_origins_get_default_ports() {
        let o = Origin::parse("https://Auth.Example/oauth2/token").unwrap();
        assert_eq!(o.to_string(), "https://auth.example:443");
        let o = Origin::parse("https://[::1]:8443/x").unwrap();
        assert_eq!(o.to_string(), "https://[::1]:8443");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Origin::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(Origin::parse("http://[::1]:8080").is_ok());
        assert!(Origin::parse("http://localhost:1").is_ok());
        let err = Origin::parse("http://auth.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(Origin::parse("http://10.0.0.1").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://user@auth.example").is_err());
        assert!(Origin::parse("https://auth.example:/x").is_err());
        assert!(Origin::parse("auth.example").is_err());
        assert!(Origin::parse("https://auth.example:99999").is_err());
    }

    #[test]
    fn non_public_addresses_are_recognised_in_every_form() {
        for private in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            let ip: std::net::IpAddr = private.parse().unwrap();
            assert!(!is_public_ip(ip), "{private} counted as public");
        }
        for public in [
            "1.1.1.1",
            "104.18.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: std::net::IpAddr = public.parse().unwrap();
            assert!(is_public_ip(ip), "{public} counted as private");
        }
        let refusal = |u: &str| Origin::parse(u).unwrap().default_refusal();
        assert!(refusal("https://169.254.169.254").is_some());
        assert!(refusal("https://[::ffff:169.254.169.254]").is_some());
        assert!(refusal("https://[::ffff:a9fe:a9fe]").is_some());
        assert!(refusal("https://localhost:8443").is_some());
        assert!(refusal("http://127.0.0.1:8080").is_some());
        assert!(refusal("https://api.acme.example").is_none());
    }
}
