//! One-to-one conversions between the core's types and the generated WIT types.

use grok_provider_core::ProviderError;
use grok_provider_core::config::ProviderConfig;
use grok_provider_core::types as core;

use super::bindings::model_provider::plugin::config::ProviderConfig as HostConfig;
use super::bindings::model_provider::plugin::types as wit;

pub fn config_from_host(c: HostConfig) -> ProviderConfig {
    ProviderConfig {
        issuer: c.issuer,
        api_base: c.api_base,
        client_id: c.client_id,
        scope: c.scope,
        user_agent: c.user_agent,
    }
}

pub fn error(e: ProviderError) -> wit::ProviderError {
    use wit::ProviderError as W;
    match e {
        ProviderError::AccessDenied(m) => W::AccessDenied(m),
        ProviderError::DeviceCodeExpired(m) => W::DeviceCodeExpired(m),
        ProviderError::RateLimited {
            message,
            retry_after_seconds,
        } => W::RateLimited(wit::RateLimit {
            message,
            retry_after_seconds,
        }),
        ProviderError::Unauthorized(m) => W::Unauthorized(m),
        ProviderError::TierNotAllowed(m) => W::TierNotAllowed(m),
        ProviderError::QuotaExhausted(m) => W::QuotaExhausted(m),
        ProviderError::UpstreamUnavailable(m) => W::UpstreamUnavailable(m),
        ProviderError::Network(m) => W::Network(m),
        ProviderError::InvalidResponse(m) => W::InvalidResponse(m),
        ProviderError::NotConnected(m) => W::NotConnected(m),
        ProviderError::InvalidInput(m) => W::InvalidInput(m),
        ProviderError::DeniedBySandbox(m) => W::DeniedBySandbox(m),
        ProviderError::Storage(m) => W::Storage(m),
        other => W::InvalidResponse(other.to_string()),
    }
}

fn lane(l: core::Lane) -> wit::Lane {
    match l {
        core::Lane::ChatCompletions => wit::Lane::ChatCompletions,
        core::Lane::Responses => wit::Lane::Responses,
        core::Lane::Media => wit::Lane::Media,
    }
}

fn model(m: core::Model) -> wit::Model {
    wit::Model {
        id: m.id,
        lane: lane(m.lane),
        owned_by: m.owned_by,
        created: m.created,
    }
}

pub fn status(s: core::ConnectionStatus) -> wit::ConnectionStatus {
    wit::ConnectionStatus {
        connected: s.connected,
        tier: s.tier,
        tier_name: s.tier_name,
        expires_at: s.expires_at,
        default_model_id: s.default_model_id,
        models: s.models.into_iter().map(model).collect(),
    }
}

pub fn prompt(p: core::DevicePrompt) -> wit::DevicePrompt {
    wit::DevicePrompt {
        pending_id: p.pending_id,
        verification_url_with_code: p.verification_url_with_code,
        verification_url: p.verification_url,
        user_code: p.user_code,
        expires_in_seconds: p.expires_in_seconds,
        interval_seconds: p.interval_seconds,
    }
}

pub fn poll_outcome(o: core::PollOutcome) -> wit::PollOutcome {
    match o {
        core::PollOutcome::Pending(p) => wit::PollOutcome::Pending(wit::PendingLogin {
            pending_id: p.pending_id,
            interval_seconds: p.interval_seconds,
            expires_in_seconds: p.expires_in_seconds,
        }),
        core::PollOutcome::Connected(s) => wit::PollOutcome::Connected(status(s)),
    }
}

pub fn logout(r: core::LogoutReport) -> wit::LogoutReport {
    wit::LogoutReport {
        was_connected: r.was_connected,
        revoked: r.revoked,
    }
}

pub fn model_list(l: core::ModelList) -> wit::ModelList {
    wit::ModelList {
        models: l.models.into_iter().map(model).collect(),
        media_models: l.media_models.into_iter().map(model).collect(),
        default_model_id: l.default_model_id,
        cached: l.cached,
        fetched_at: l.fetched_at,
    }
}

pub fn chat_request(r: wit::ChatRequest) -> core::ChatRequest {
    core::ChatRequest {
        model: r.model,
        messages: r
            .messages
            .into_iter()
            .map(|m| core::Message {
                role: match m.role {
                    wit::Role::System => core::Role::System,
                    wit::Role::User => core::Role::User,
                    wit::Role::Assistant => core::Role::Assistant,
                },
                content: m.content,
            })
            .collect(),
        thinking: r.thinking.map(|t| match t {
            wit::ThinkingEffort::Low => core::ThinkingEffort::Low,
            wit::ThinkingEffort::Medium => core::ThinkingEffort::Medium,
            wit::ThinkingEffort::High => core::ThinkingEffort::High,
        }),
        max_output_tokens: r.max_output_tokens,
        temperature: r.temperature,
    }
}

fn usage(u: core::Usage) -> wit::Usage {
    wit::Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        reasoning_tokens: u.reasoning_tokens,
        total_tokens: u.total_tokens,
    }
}

pub fn chat_reply(r: core::ChatReply) -> wit::ChatReply {
    wit::ChatReply {
        content: r.content,
        model: r.model,
        lane: lane(r.lane),
        usage: r.usage.map(usage),
        finish_reason: r.finish_reason,
    }
}

pub fn chunk(c: core::ChatChunk) -> wit::ChatChunk {
    wit::ChatChunk {
        delta: c.delta,
        finish_reason: c.finish_reason,
        usage: c.usage.map(usage),
    }
}
