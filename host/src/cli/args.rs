//! Flags and subcommands (scripts drive these names: keep them stable).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use provider_runtime::HostError;

/// Run a model-provider plugin component in a sandbox.
#[derive(Debug, Parser)]
#[command(name = "provider-host", version, about)]
pub struct Cli {
    /// Where tenant state lives (default: the XDG state dir).
    #[arg(long, global = true, env = "PROVIDER_HOST_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Tenant whose credentials to use.
    #[arg(long, global = true, default_value = "default")]
    pub tenant: String,
    /// A plugin component to run instead of the one embedded in this binary.
    #[arg(long, global = true)]
    pub plugin: Option<PathBuf>,
    /// Log filter for stderr (RUST_LOG wins when set).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// Longest one plugin call may run, in seconds.
    #[arg(long, global = true)]
    pub call_timeout_secs: Option<u64>,
    /// Keep tenants' secrets in this PostgreSQL database (`postgres://…`) instead of the
    /// state directory's files; shared by every host of a fleet. Needs PROVIDER_HOST_KEY.
    #[arg(
        long,
        global = true,
        env = "PROVIDER_HOST_SECRETS_URL",
        hide_env_values = true
    )]
    pub secrets_url: Option<String>,
    /// An environment variable the plugin's manifest may read besides those with its own
    /// prefix (`XAI_` for the embedded plugin; the first word of another's manifest id).
    /// The host's own (`PROVIDER_HOST_*`), proxy and credential variables are refused
    /// even when named here.
    #[arg(long = "allow-env", global = true, value_name = "NAME")]
    pub allow_env: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The global flags as the settings `provider-app` runs with.
    pub fn settings(&self) -> provider_app::Settings {
        provider_app::Settings {
            state_dir: self.state_dir.clone(),
            tenant: self.tenant.clone(),
            plugin: self.plugin.clone(),
            call_timeout_secs: self.call_timeout_secs,
            secrets_url: self.secrets_url.clone(),
            allow_env: self.allow_env.clone(),
        }
    }

    /// The component to run: `--plugin`, else the one compiled into this binary (so an
    /// installed binary needs nothing from the checkout it was built in).
    pub fn plugin_source(&self) -> provider_runtime::PluginSource {
        self.settings().plugin_source()
    }

    pub fn state_dir(&self) -> Result<PathBuf, HostError> {
        self.settings().state_dir()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Credential state, tier and known models (no token is ever shown).
    Status,
    /// Begin a device login: prints the URL to open and the code.
    Start,
    /// Ask once whether a pending login was approved.
    Poll {
        /// Which pending login (default: the newest).
        #[arg(long)]
        pending_id: Option<String>,
    },
    /// Start, show the URL and code, and poll until approved, denied or expired.
    Login(LoginArgs),
    /// Revoke and delete the credentials, and flush cached models.
    Logout,
    /// Redeem the refresh token now (normally automatic).
    Refresh,
    /// The chat models this account may use.
    Models {
        /// Bypass the cache.
        #[arg(long)]
        force: bool,
        /// The route to list (default: the tenant's default route).
        #[arg(long)]
        route: Option<String>,
    },
    /// The API key that routes such as `api-key` spend (read from stdin, never from the
    /// command line).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Check everything a working setup needs, against the live configuration: the
    /// sandbox's allowlist, each endpoint (OpenID discovery), the stored login, each usable
    /// route's catalogue, its version gate (one minimal streamed turn: a token or two) and
    /// its quota; each failed check with its fix.
    Doctor {
        /// Print the JSON report instead of one line per check.
        #[arg(long)]
        json: bool,
        /// Skip the minimal streamed turn of each route.
        #[arg(long)]
        no_chat: bool,
        /// Enable a route besides the default one (repeatable), to check it too.
        #[arg(long, value_name = "ROUTE")]
        route: Vec<String>,
    },
    /// What is left of a route's quota, when upstream says.
    Usage {
        /// The route to ask about (default: the tenant's default route).
        #[arg(long)]
        route: Option<String>,
    },
    /// Operations on the secret store itself.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Send a chat turn.
    Chat(ChatArgs),
    /// Serve an OpenAI-compatible endpoint (`/v1/models`, `/v1/chat/completions`) in
    /// front of the plugin; each request's key (`serve-key create`) picks its tenant.
    Serve(ServeArgs),
    /// Local API keys of `serve`.
    ServeKey {
        #[command(subcommand)]
        command: ServeKeyCommand,
    },
    /// What a component given with --plugin is granted beyond its own manifest.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Check a plugin component (--plugin) against embedded reference servers on
    /// 127.0.0.1: no internet, no account; stored credentials are never touched.
    Conformance(ConformanceArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store an API key for --tenant: read from stdin (one line), or --from-file.
    Set {
        /// Read the key from this file instead of stdin.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// Whether a key is stored, and its last four characters.
    Status,
    /// Delete the stored key (the OAuth login is not touched).
    Delete,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every stored value under a new master key. The current key comes from
    /// PROVIDER_HOST_KEY or the key file as usual; the new one from
    /// PROVIDER_HOST_NEW_KEY. Safe to run again after an interruption.
    RotateKey,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: std::net::SocketAddr,
    /// Allow a non-loopback --listen (which then needs --tls-cert and --tls-key).
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Enable a route besides the default one (repeatable); requests pick among the
    /// enabled routes by the `X-Provider-Route` header or their model's prefix.
    #[arg(long, value_name = "ROUTE")]
    pub route: Vec<String>,
    /// Live plugin sessions per tenant: how many requests of one tenant run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub sessions_per_tenant: u16,
    /// How long a request waits for a busy tenant's session before a 429 with Retry-After.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub queue_wait_secs: u64,
    /// Interval of SSE keep-alive comments while a stream waits for its next event (so
    /// proxies with idle timeouts keep the connection); the response head goes out at
    /// once when the upstream head takes longer than this.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600), value_name = "SECS")]
    pub keepalive_secs: u64,
    /// Plugin memory all sessions may hold together, in MiB (each session is capped at 64
    /// MiB on its own): idle sessions are dropped to make room, and past it a request gets
    /// 503 `pool_exhausted` with Retry-After instead of the process growing.
    #[arg(long, default_value_t = 384, value_parser = clap::value_parser!(u32).range(64..=1_048_576),
          value_name = "MIB", env = "PROVIDER_HOST_PLUGIN_MEMORY_MIB")]
    pub plugin_memory_mib: u32,
    /// Worker threads answering requests (default: the cores this process may run on, as
    /// its CPU affinity and cgroup quota allow). More threads than cores only add
    /// hand-offs between threads.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub workers: Option<u16>,
    /// A model name for `/v1/messages`, `ALIAS=MODEL` (repeatable, or comma-separated in
    /// the variable): a client that insists on `claude-…` names (Claude Code) reaches a
    /// Grok model, e.g. `--model-alias claude-sonnet-4-5=grok-4.6`. Listed by /v1/models.
    #[arg(long, value_name = "ALIAS=MODEL", value_parser = model_alias,
          env = "PROVIDER_HOST_MODEL_ALIASES", value_delimiter = ',')]
    pub model_alias: Vec<(String, String)>,
}

/// `ALIAS=MODEL`, both non-empty.
fn model_alias(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, m)) if !a.trim().is_empty() && !m.trim().is_empty() => {
            Ok((a.trim().to_owned(), m.trim().to_owned()))
        }
        _ => Err(format!("{s:?} is not ALIAS=MODEL")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ServeKeyCommand {
    /// A new key for --tenant, printed once (only a salted hash is kept).
    Create,
    /// The keys (ids and tenants, never the keys).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id (as `list` shows it).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Print one JSON object {ok, passed, failed, scenarios} instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only this scenario (repeatable); an unknown name lists the known ones.
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Only start; print the prompt and exit.
    #[arg(long)]
    pub no_wait: bool,
    /// Do not draw a QR code.
    #[arg(long)]
    pub no_qr: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Thinking {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LaneArg {
    ChatCompletions,
    Responses,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Model id (bare, or with a route's prefix, which then picks the route); default: the
    /// request body's model, else the plugin's default model.
    #[arg(long)]
    pub model: Option<String>,
    /// The route to pay with (default: the model's prefix, else the tenant's default).
    #[arg(long)]
    pub route: Option<String>,
    /// Serve the turn on this lane instead of the model's own.
    #[arg(long, value_enum)]
    pub lane: Option<LaneArg>,
    /// Reasoning effort.
    #[arg(long, value_enum)]
    pub thinking: Option<Thinking>,
    /// Stream the reply as it arrives.
    #[arg(long)]
    pub stream: bool,
    /// A system message before the user's.
    #[arg(long)]
    pub system: Option<String>,
    /// Read the conversation (JSON array of OpenAI-style messages) from a file, or `-`.
    #[arg(long, conflicts_with_all = ["message", "request"])]
    pub messages: Option<String>,
    /// Read a whole OpenAI Chat Completions request body (tools, images, response_format,
    /// ...) from a file, or `-` for stdin.
    #[arg(long, conflicts_with_all = ["message", "system"])]
    pub request: Option<String>,
    /// Upper bound on generated tokens.
    #[arg(long)]
    pub max_output_tokens: Option<u32>,
    /// Script mode: one JSON object (JSON lines when streaming).
    #[arg(long)]
    pub json: bool,
    /// The user's message.
    #[arg(required_unless_present_any = ["messages", "request"])]
    pub message: Option<String>,
}

/// `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Approve the component at PATH: records its SHA-256 and what it is granted (the
    /// environment names it reads besides its own prefix, each approved with --allow-env;
    /// its default route; its default endpoints) in the state directory. A component whose
    /// digest differs is refused until trusted again.
    Trust {
        /// The component (`.wasm`).
        path: PathBuf,
    },
}
