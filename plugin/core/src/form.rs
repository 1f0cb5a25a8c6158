//! `application/x-www-form-urlencoded` bodies for the OAuth endpoints.

/// Encode name/value pairs as a form body.
pub fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// Decode a form body (used by tests and fakes to inspect requests).
pub fn decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_reserved_characters() {
        let body = super::encode(&[("scope", "openid api:access"), ("x", "a&b=c+d")]);
        assert_eq!(body, b"scope=openid+api%3Aaccess&x=a%26b%3Dc%2Bd");
        assert_eq!(
            super::decode(&body),
            vec![
                ("scope".to_owned(), "openid api:access".to_owned()),
                ("x".to_owned(), "a&b=c+d".to_owned())
            ]
        );
    }
}
