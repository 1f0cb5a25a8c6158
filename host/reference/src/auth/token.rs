//! The token endpoint (device_code grant with RFC 8628 §3.5 pacing; refresh_token grant
//! with rotation and reuse detection) and the RFC 7009 revocation endpoint.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{AuthShared, AuthState, DeviceStatus, Grant, RefreshFamily, RefreshRecord};
use crate::http::{RecordedRequest, Reply, lock, unix_now};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// 256 random bits, base64url: device codes, refresh tokens, jti.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `POST /oauth2/token`.
pub(super) fn token(shared: &AuthShared, req: &RecordedRequest) -> Reply {
    let grant_type = req.form_value("grant_type").unwrap_or_default();
    {
        let mut state = lock(&shared.state);
        match grant_type.as_str() {
            DEVICE_GRANT => state.stats.token_requests_device_code += 1,
            "refresh_token" => state.stats.token_requests_refresh += 1,
            _ => state.stats.token_requests_other += 1,
        }
    }
    let client_id = match req.form_value("client_id") {
        None => return shared.oauth_error(401, "invalid_client", "client_id is required"),
        Some(id) if !shared.knows_client(&id) => {
            return shared.oauth_error(401, "invalid_client", "unknown client");
        }
        Some(id) => id,
    };
    match grant_type.as_str() {
        DEVICE_GRANT => device_grant(shared, req, &client_id),
        "refresh_token" => refresh_grant(shared, req, &client_id),
        "" => shared.oauth_error(400, "invalid_request", "grant_type is required"),
        _ => shared.oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    }
}

fn device_grant(shared: &AuthShared, req: &RecordedRequest, client_id: &str) -> Reply {
    let Some(device_code) = req.form_value("device_code") else {
        return shared.oauth_error(400, "invalid_request", "device_code is required");
    };
    let mut guard = lock(&shared.state);
    let state = &mut *guard;
    let Some(device) = state
        .devices
        .get_mut(&device_code)
        .filter(|d| d.client_id == client_id)
    else {
        return shared.oauth_error(400, "invalid_grant", "device code not found or invalid");
    };
    *state
        .stats
        .polls_per_user_code
        .entry(device.user_code.clone())
        .or_default() += 1;
    let now = Instant::now();
    match &device.status {
        DeviceStatus::Redeemed { grant } => {
            let grant = *grant;
            if shared.config.revoke_on_device_code_reuse {
                state.stats.reuse_detections += 1;
                state.revoke_grant(grant);
            }
            return shared.oauth_error(400, "invalid_grant", "device code already used");
        }
        DeviceStatus::Denied => {
            return shared.oauth_error(400, "access_denied", "the user denied the request");
        }
        DeviceStatus::Expired => {
            return shared.oauth_error(400, "expired_token", "the device code has expired");
        }
        DeviceStatus::Pending | DeviceStatus::Approved { .. } if now >= device.expires_at => {
            return shared.oauth_error(400, "expired_token", "the device code has expired");
        }
        DeviceStatus::Pending | DeviceStatus::Approved { .. } => {}
    }
    let too_fast = device
        .last_poll
        .is_some_and(|last| now.duration_since(last).as_secs_f64() < device.interval as f64);
    device.last_poll = Some(now);
    // A forced slow_down is used up only by a poll that was not too fast anyway.
    let forced = !too_fast && state.forced_slow_downs > 0;
    if forced {
        state.forced_slow_downs -= 1;
    }
    if forced || too_fast {
        // RFC 8628 §3.5: the interval grows by 5 s for this and all later requests.
        device.interval += u64::from(shared.config.slow_down_increment);
        state.stats.slow_downs += 1;
        return shared.oauth_error(400, "slow_down", "polling too fast; add 5 seconds");
    }
    let (subject, tier) = match &device.status {
        DeviceStatus::Approved { tier, subject } => (subject.clone(), *tier),
        _ => {
            return shared.oauth_error(
                400,
                "authorization_pending",
                "the user has not yet approved",
            );
        }
    };
    let scope = device.scope.clone();
    let grant = new_grant(state, client_id, &subject, tier, &scope);
    if let Some(device) = state.devices.get_mut(&device_code) {
        device.status = DeviceStatus::Redeemed { grant };
    }
    let (access, refresh) = mint(shared, state, grant, true);
    token_response(shared, state, grant, access, refresh)
}

fn refresh_grant(shared: &AuthShared, req: &RecordedRequest, client_id: &str) -> Reply {
    let Some(token) = req.form_value("refresh_token") else {
        return shared.oauth_error(400, "invalid_request", "refresh_token is required");
    };
    let mut guard = lock(&shared.state);
    let state = &mut *guard;
    let presented = digest(&token);
    let Some(record) = state.refresh.get_mut(&presented) else {
        return shared.oauth_error(400, "invalid_grant", "Refresh token not found or invalid");
    };
    let grant = record.grant;
    let used = record.used;
    let Some(g) = state.grants.get(grant) else {
        return shared.oauth_error(400, "invalid_grant", "Refresh token not found or invalid");
    };
    if g.client_id != client_id {
        // Another client's token: refused without touching it (RFC 6749 §6).
        return shared.oauth_error(400, "invalid_grant", "Refresh token not found or invalid");
    }
    if g.revoked {
        return shared.oauth_error(400, "invalid_grant", "Refresh token has been revoked");
    }
    let family = (g.client_id.clone(), g.subject.clone());
    // Without rotation a family has no single live token: only `used` counts then.
    let superseded = shared.config.refresh_family == RefreshFamily::ClientAndAccount
        && shared.config.rotate_refresh_tokens
        && state
            .families
            .get(&family)
            .is_some_and(|live| *live != presented);
    if used || superseded {
        // A retired token came back: someone holds a copy. Kill the whole login, and under
        // `ClientAndAccount` every login of the account by this client (§1.6).
        state.stats.reuse_detections += 1;
        if shared.config.refresh_family == RefreshFamily::ClientAndAccount {
            state.stats.family_revocations += 1;
            state.revoke_family(&family.0, &family.1);
        } else {
            state.revoke_grant(grant);
        }
        return shared.oauth_error(400, "invalid_grant", "Refresh token has been revoked");
    }
    let Some(record) = state.refresh.get_mut(&presented) else {
        return shared.oauth_error(400, "invalid_grant", "Refresh token not found or invalid");
    };
    let rotate = shared.config.rotate_refresh_tokens;
    if rotate {
        record.used = true;
    }
    state.stats.refresh_redemptions += 1;
    let (access, refresh) = mint(shared, state, grant, rotate);
    token_response(shared, state, grant, access, refresh)
}

fn token_response(
    shared: &AuthShared,
    state: &mut AuthState,
    grant: usize,
    access: String,
    refresh: Option<String>,
) -> Reply {
    state.stats.tokens_issued += 1;
    let g = &state.grants[grant];
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "scope": g.scope,
    });
    if !shared.config.omit_expires_in {
        body["expires_in"] = json!(shared.config.access_token_ttl.as_secs());
    }
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    if g.scope.split_whitespace().any(|s| s == "openid") {
        let now = unix_now();
        let id_claims = json!({
            "iss": shared.issuer, "aud": shared.config.client_id, "sub": g.subject,
            "iat": now, "exp": now + 3600,
        });
        body["id_token"] = json!(shared.signer.sign("JWT", &id_claims));
    }
    Reply::json(200, &body)
        .with_header("cache-control", "no-store")
        .with_header("pragma", "no-cache")
}

/// Create a grant and return its id.
pub(super) fn new_grant(
    state: &mut AuthState,
    client_id: &str,
    subject: &str,
    tier: u32,
    scope: &str,
) -> usize {
    state.grants.push(Grant {
        client_id: client_id.to_owned(),
        subject: subject.to_owned(),
        tier,
        scope: scope.to_owned(),
        revoked: false,
    });
    state.stats.grants_issued += 1;
    state.grants.len() - 1
}

/// Sign an access token for `grant` and, when `with_refresh`, a new refresh token.
pub(super) fn mint(
    shared: &AuthShared,
    state: &mut AuthState,
    grant: usize,
    with_refresh: bool,
) -> (String, Option<String>) {
    let g = &state.grants[grant];
    let now = unix_now();
    let jti = random_token();
    let claims = json!({
        "iss": shared.issuer,
        "aud": shared.config.client_id,
        "sub": g.subject,
        "iat": now,
        "exp": now + shared.config.access_token_ttl.as_secs(),
        "jti": jti,
        "scope": g.scope,
        // `aud` stays the API's audience (the configured client id); this names who asked.
        "client_id": g.client_id,
        "tier": g.tier,
    });
    let family = (g.client_id.clone(), g.subject.clone());
    let access = shared.signer.sign("at+jwt", &claims);
    state.access.insert(jti, grant);
    let refresh = with_refresh.then(|| {
        let token = random_token();
        state
            .refresh
            .insert(digest(&token), RefreshRecord { grant, used: false });
        // The newest refresh token is the family's only live one (§1.6).
        state.families.insert(family, digest(&token));
        token
    });
    (access, refresh)
}

/// `POST /oauth2/revoke` (RFC 7009): a refresh token revokes its grant, an access token
/// itself. Unknown tokens still get 200, as the RFC requires.
pub(super) fn revoke(shared: &AuthShared, req: &RecordedRequest) -> Reply {
    let mut guard = lock(&shared.state);
    let state = &mut *guard;
    state.stats.revocation_requests += 1;
    match req.form_value("client_id") {
        Some(id) if shared.knows_client(&id) => {}
        _ => return shared.oauth_error(401, "invalid_client", "unknown client"),
    }
    let Some(token) = req.form_value("token") else {
        return shared.oauth_error(400, "invalid_request", "token is required");
    };
    if let Some(record) = state.refresh.get(&digest(&token)) {
        let grant = record.grant;
        state.revoke_grant(grant);
    } else if let Some(jti) = access_jti(&token)
        && state.access.contains_key(&jti)
    {
        state.revoked_jti.insert(jti);
    }
    Reply::raw(200, "application/json", "{}").with_header("cache-control", "no-store")
}

/// The `jti` of something shaped like a JWT (only our own, known jtis are acted on).
fn access_jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    claims.get("jti")?.as_str().map(str::to_owned)
}
