//! One-to-one conversions between the core's types and the generated WIT types.

use grok_provider_core::ProviderError;
use grok_provider_core::types as core;

use super::bindings::model_provider::plugin::types as wit;

pub fn manifest(m: core::PluginManifest) -> wit::PluginManifest {
    wit::PluginManifest {
        id: m.id,
        display_name: m.display_name,
        settings: m
            .settings
            .into_iter()
            .map(|s| wit::Setting {
                key: s.key,
                env: s.env,
                description: s.description,
                default_value: s.default_value,
                kind: match s.kind {
                    core::SettingKind::Endpoint => wit::SettingKind::Endpoint,
                    core::SettingKind::RouteName => wit::SettingKind::RouteName,
                    core::SettingKind::Text => wit::SettingKind::Text,
                },
                route: s.route,
            })
            .collect(),
        routes: m
            .routes
            .into_iter()
            .map(|r| wit::RouteInfo {
                name: r.name,
                description: r.description,
                credential: match r.credential {
                    core::CredentialKind::Oauth => wit::CredentialKind::Oauth,
                    core::CredentialKind::ApiKey => wit::CredentialKind::ApiKey,
                },
                model_prefix: r.model_prefix,
            })
            .collect(),
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
            alternatives,
        } => W::RateLimited(wit::RateLimit {
            message,
            retry_after_seconds,
            alternatives,
        }),
        ProviderError::Unauthorized(m) => W::Unauthorized(m),
        ProviderError::TierNotAllowed(m) => W::TierNotAllowed(m),
        ProviderError::QuotaExhausted {
            message,
            route,
            alternatives,
        } => W::QuotaExhausted(wit::QuotaRefusal {
            message,
            route,
            alternatives,
        }),
        ProviderError::UpstreamUnavailable(m) => W::UpstreamUnavailable(m),
        ProviderError::Network(m) => W::Network(m),
        ProviderError::InvalidResponse(m) => W::InvalidResponse(m),
        ProviderError::NotConnected(m) => W::NotConnected(m),
        ProviderError::InvalidInput(m) => W::InvalidInput(m),
        ProviderError::DeniedBySandbox(m) => W::DeniedBySandbox(m),
        ProviderError::Storage(m) => W::Storage(m),
        ProviderError::ClientOutdated(m) => W::ClientOutdated(m),
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
        route: m.route,
        owned_by: m.owned_by,
        created: m.created,
    }
}

pub fn status(s: core::ConnectionStatus) -> wit::ConnectionStatus {
    wit::ConnectionStatus {
        connected: s.connected,
        tier: s.tier,
        tier_name: s.tier_name,
        subscription: s.subscription,
        expires_at: s.expires_at,
        default_model_id: s.default_model_id,
        models: s.models.into_iter().map(model).collect(),
        default_route: s.default_route,
        api_key_stored: s.api_key_stored,
        routes: s
            .routes
            .into_iter()
            .map(|r| wit::RouteStatus {
                name: r.name,
                usable: r.usable,
                detail: r.detail,
                bills: r.bills,
            })
            .collect(),
    }
}

pub fn api_key_info(s: core::ApiKeyInfo) -> wit::ApiKeyInfo {
    wit::ApiKeyInfo {
        stored: s.stored,
        last_four: s.last_four,
    }
}

pub fn quota_report(q: core::QuotaReport) -> wit::QuotaReport {
    wit::QuotaReport {
        route: q.route,
        percent_used: q.percent_used,
        period: q.period.map(|p| match p {
            core::QuotaPeriod::Weekly => wit::QuotaPeriod::Weekly,
            core::QuotaPeriod::Monthly => wit::QuotaPeriod::Monthly,
        }),
        period_start: q.period_start,
        resets_at: q.resets_at,
        on_demand_cap_cents: q.on_demand_cap_cents,
        on_demand_used_cents: q.on_demand_used_cents,
        prepaid_balance_cents: q.prepaid_balance_cents,
        credits: q.credits.map(|c| wit::CreditBalance {
            remaining: c.remaining,
            total: c.total,
            unit: c.unit,
        }),
        detail: q.detail,
        fetched_at: q.fetched_at,
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
        route: l.route,
        models: l.models.into_iter().map(model).collect(),
        media_models: l.media_models.into_iter().map(model).collect(),
        default_model_id: l.default_model_id,
        bills: l.bills,
        cached: l.cached,
        fetched_at: l.fetched_at,
    }
}

fn lane_in(l: wit::Lane) -> core::Lane {
    match l {
        wit::Lane::ChatCompletions => core::Lane::ChatCompletions,
        wit::Lane::Responses => core::Lane::Responses,
        wit::Lane::Media => core::Lane::Media,
    }
}

fn part_in(p: wit::ContentPart) -> core::ContentPart {
    match p {
        wit::ContentPart::Text(t) => core::ContentPart::Text(t),
        wit::ContentPart::Image(i) => core::ContentPart::Image(core::Image {
            source: match i.source {
                wit::ImageSource::Url(u) => core::ImageSource::Url(u),
                wit::ImageSource::Data(d) => core::ImageSource::Data {
                    media_type: d.media_type,
                    base64: d.base64,
                },
            },
            detail: i.detail.map(|d| match d {
                wit::ImageDetail::Auto => core::ImageDetail::Auto,
                wit::ImageDetail::Low => core::ImageDetail::Low,
                wit::ImageDetail::High => core::ImageDetail::High,
            }),
        }),
    }
}

fn call_in(c: wit::ToolCall) -> core::ToolCall {
    core::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn call_out(c: core::ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn reasoning_in(r: wit::ReasoningItem) -> core::ReasoningItem {
    core::ReasoningItem {
        lane: lane_in(r.lane),
        data: r.data,
    }
}

fn reasoning_out(r: core::ReasoningItem) -> wit::ReasoningItem {
    wit::ReasoningItem {
        lane: lane(r.lane),
        data: r.data,
    }
}

fn message_in(m: wit::Message) -> core::Message {
    core::Message {
        role: match m.role {
            wit::Role::System => core::Role::System,
            wit::Role::User => core::Role::User,
            wit::Role::Assistant => core::Role::Assistant,
            wit::Role::Tool => core::Role::Tool,
        },
        content: m.content.into_iter().map(part_in).collect(),
        tool_calls: m.tool_calls.into_iter().map(call_in).collect(),
        tool_call_id: m.tool_call_id,
        reasoning: m.reasoning.into_iter().map(reasoning_in).collect(),
    }
}

pub fn chat_request(r: wit::ChatRequest) -> core::ChatRequest {
    core::ChatRequest {
        model: r.model,
        route: r.route,
        messages: r.messages.into_iter().map(message_in).collect(),
        lane: r.lane.map(lane_in),
        tools: r
            .tools
            .into_iter()
            .map(|t| core::FunctionTool {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
                strict: t.strict,
            })
            .collect(),
        tool_choice: r.tool_choice.map(|c| match c {
            wit::ToolChoice::Auto => core::ToolChoice::Auto,
            wit::ToolChoice::None => core::ToolChoice::None,
            wit::ToolChoice::Required => core::ToolChoice::Required,
            wit::ToolChoice::Function(n) => core::ToolChoice::Function(n),
        }),
        parallel_tool_calls: r.parallel_tool_calls,
        response_format: r.response_format.map(|f| match f {
            wit::ResponseFormat::Text => core::ResponseFormat::Text,
            wit::ResponseFormat::JsonObject => core::ResponseFormat::JsonObject,
            wit::ResponseFormat::JsonSchema(s) => {
                core::ResponseFormat::JsonSchema(core::JsonSchemaFormat {
                    name: s.name,
                    schema: s.schema,
                    description: s.description,
                    strict: s.strict,
                })
            }
        }),
        stop: r.stop,
        seed: r.seed,
        top_p: r.top_p,
        temperature: r.temperature,
        max_output_tokens: r.max_output_tokens,
        thinking: r.thinking.map(|t| match t {
            wit::ThinkingEffort::Low => core::ThinkingEffort::Low,
            wit::ThinkingEffort::Medium => core::ThinkingEffort::Medium,
            wit::ThinkingEffort::High => core::ThinkingEffort::High,
        }),
        prompt_cache_key: r.prompt_cache_key,
        extra_body: r.extra_body,
    }
}

fn usage(u: core::Usage) -> wit::Usage {
    wit::Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        reasoning_tokens: u.reasoning_tokens,
        cached_input_tokens: u.cached_input_tokens,
        total_tokens: u.total_tokens,
    }
}

fn finish(f: core::FinishReason) -> wit::FinishReason {
    match f {
        core::FinishReason::Stop => wit::FinishReason::Stop,
        core::FinishReason::Length => wit::FinishReason::Length,
        core::FinishReason::ToolCalls => wit::FinishReason::ToolCalls,
        core::FinishReason::ContentFilter => wit::FinishReason::ContentFilter,
        core::FinishReason::Other(s) => wit::FinishReason::Other(s),
    }
}

fn citation(c: core::Citation) -> wit::Citation {
    wit::Citation {
        url: c.url,
        title: c.title,
        start_index: c.start_index,
        end_index: c.end_index,
    }
}

pub fn chat_reply(r: core::ChatReply) -> wit::ChatReply {
    wit::ChatReply {
        content: r.content,
        tool_calls: r.tool_calls.into_iter().map(call_out).collect(),
        reasoning: r.reasoning,
        reasoning_items: r.reasoning_items.into_iter().map(reasoning_out).collect(),
        citations: r.citations.into_iter().map(citation).collect(),
        model: r.model,
        lane: lane(r.lane),
        route: r.route,
        usage: r.usage.map(usage),
        finish_reason: r.finish_reason.map(finish),
    }
}

pub fn chunk(c: core::ChatChunk) -> wit::ChatChunk {
    use core::ChatChunk as C;
    match c {
        C::Text(t) => wit::ChatChunk::Text(t),
        C::Reasoning(t) => wit::ChatChunk::Reasoning(t),
        C::ToolCallStart { index, id, name } => {
            wit::ChatChunk::ToolCallStart(wit::ToolCallStart { index, id, name })
        }
        C::ToolCallArguments { index, arguments } => {
            wit::ChatChunk::ToolCallArguments(wit::ToolCallDelta { index, arguments })
        }
        C::ReasoningItem(r) => wit::ChatChunk::ReasoningItem(reasoning_out(r)),
        C::Citation(c) => wit::ChatChunk::Citation(citation(c)),
        C::Usage(u) => wit::ChatChunk::Usage(usage(u)),
        C::Finish(f) => wit::ChatChunk::Finish(finish(f)),
    }
}
