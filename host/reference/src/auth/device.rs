//! Device authorization (RFC 8628 §3.1–3.3): issuing device and user codes, the user's
//! decision, and a minimal verification page for people trying the server by hand.

use std::time::Instant;

use serde_json::json;

use super::{AuthShared, Device, DeviceStatus, normalise_user_code, unknown};
use crate::error::{Error, Result};
use crate::http::{RecordedRequest, Reply, lock};

/// RFC 8628 §6.1 suggests consonants only: no vowels, so no words, and no 0/O, 1/I mix-ups.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// `POST /oauth2/device/code` with `client_id` and `scope`.
pub(super) fn authorize(shared: &AuthShared, req: &RecordedRequest) -> Reply {
    let Some(client_id) = req.form_value("client_id") else {
        return shared.oauth_error(400, "invalid_request", "client_id is required");
    };
    if !shared.knows_client(&client_id) {
        return shared.oauth_error(401, "invalid_client", "unknown client");
    }
    let scope = req.form_value("scope").unwrap_or_default();
    let device_code = super::token::random_token();
    let mut state = lock(&shared.state);
    let user_code = loop {
        let code = new_user_code();
        if !state.user_codes.contains_key(&code) {
            break code;
        }
    };
    state.devices.insert(
        device_code.clone(),
        Device {
            user_code: user_code.clone(),
            client_id,
            scope,
            expires_at: Instant::now() + shared.config.device_code_ttl,
            interval: u64::from(shared.config.interval),
            last_poll: None,
            status: DeviceStatus::Pending,
        },
    );
    state
        .user_codes
        .insert(user_code.clone(), device_code.clone());
    state.latest_user_code = Some(user_code.clone());
    state.stats.device_authorizations += 1;
    drop(state);

    let base = shared.verification_base();
    let mut body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": base,
        "expires_in": shared.config.device_code_ttl.as_secs(),
        "interval": shared.config.interval,
    });
    if !shared.config.omit_verification_uri_complete {
        body["verification_uri_complete"] = json!(format!("{base}?user_code={user_code}"));
    }
    Reply::json(200, &body).with_header("cache-control", "no-store")
}

fn new_user_code() -> String {
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let pick = rand::random_range(0..USER_CODE_ALPHABET.len());
        code.push(char::from(USER_CODE_ALPHABET[pick]));
    }
    code
}

/// Record the user's decision (or an expiry) for a pending device authorization.
pub(super) fn decide(shared: &AuthShared, user_code: &str, decision: DeviceStatus) -> Result<()> {
    let code = normalise_user_code(user_code);
    let mut state = lock(&shared.state);
    let device_code = state
        .user_codes
        .get(&code)
        .cloned()
        .ok_or_else(|| unknown(&code))?;
    let device = state
        .devices
        .get_mut(&device_code)
        .ok_or_else(|| unknown(&code))?;
    let settled = |what| Err(Error::UserCodeSettled(code.clone(), what));
    match (&device.status, &decision) {
        (DeviceStatus::Redeemed { .. }, _) => settled("redeemed"),
        (_, DeviceStatus::Expired) => {
            device.status = DeviceStatus::Expired;
            Ok(())
        }
        (DeviceStatus::Pending, _) if Instant::now() >= device.expires_at => settled("expired"),
        (DeviceStatus::Pending, _) => {
            device.status = decision;
            Ok(())
        }
        (DeviceStatus::Approved { .. }, _) => settled("approved"),
        (DeviceStatus::Denied, _) => settled("denied"),
        (DeviceStatus::Expired, _) => settled("expired"),
    }
}

/// `GET /oauth2/device?user_code=…`: shows the code with Approve and Deny buttons.
pub(super) fn page(_shared: &AuthShared, req: &RecordedRequest) -> Reply {
    let code: String = req
        .query
        .as_deref()
        .and_then(|q| crate::http::form_value(q.as_bytes(), "user_code"))
        .unwrap_or_default()
        .to_ascii_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect();
    let html = format!(
        "<!DOCTYPE html><html><head><title>Reference device login</title></head><body>\
         <h1>Device login</h1><form method=\"post\">\
         <label>Code <input name=\"user_code\" value=\"{code}\"></label> \
         <label>Tier <select name=\"tier\"><option>1</option><option>2</option>\
         <option>3</option><option selected>4</option></select></label> \
         <button name=\"decision\" value=\"approve\">Approve</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form></body></html>"
    );
    Reply::raw(200, "text/html; charset=utf-8", html)
}

/// `POST /oauth2/device`: the person's decision from the page.
pub(super) fn page_decision(shared: &AuthShared, req: &RecordedRequest) -> Reply {
    let code = req.form_value("user_code").unwrap_or_default();
    let tier = req
        .form_value("tier")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let decision = match req.form_value("decision").as_deref() {
        Some("approve") => DeviceStatus::Approved {
            tier,
            subject: "reference-user".into(),
        },
        _ => DeviceStatus::Denied,
    };
    let approved = matches!(decision, DeviceStatus::Approved { .. });
    let (status, text) = match decide(shared, &code, decision) {
        Ok(()) if approved => (200, "Approved. You can return to your device."),
        Ok(()) => (200, "Denied."),
        Err(Error::UnknownUserCode(_)) => (404, "Unknown code."),
        Err(_) => (409, "This code can no longer be used."),
    };
    Reply::raw(
        status,
        "text/html; charset=utf-8",
        format!("<!DOCTYPE html><html><body><p>{text}</p></body></html>"),
    )
}
