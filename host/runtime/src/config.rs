//! What the operator tells a plugin, and which origins the sandbox lets it reach.
//!
//! Nothing here knows a vendor. A plugin's [`PluginManifest`] names the configuration keys it
//! reads (with their defaults) and the endpoints among them; a [`HostConfig`] holds the
//! operator's overrides of those keys and the routes the operator enables. Resolving one
//! against the other ([`HostConfig::resolve`], into a [`ResolvedConfig`]) checks every override and derives the
//! allowlist: the origin of every endpoint setting's effective value, a route-bound
//! endpoint only while its route is enabled. The plugin is handed the overrides only
//! (through `wasi:config/store`), never anything of another plugin.
//!
//! Origins are parsed once, here ([`Origin::parse`], on `http::Uri`): `https://`, or
//! `http://` on a loopback host named explicitly (for local test servers).
//!
//! Capabilities are granted, not taken: what a plugin's manifest says is a request, and
//! the operator decides.
//! - **Destinations.** An endpoint the operator set ([`HostConfig::set`],
//!   [`HostConfig::with_allowed_origins`]) may be any address; one that is only the
//!   plugin's own default reaches public addresses only ([`AllowedOrigin::operator_set`],
//!   [`is_public_ip`]): loopback, private, link-local (cloud metadata), multicast,
//!   unspecified and reserved addresses are refused, whether named literally or reached
//!   through DNS (the sandbox checks literals, the connection pool the resolved
//!   addresses), and plain http is never allowed to a default.
//! - **Routes.** A route-bound endpoint opens when the operator enables its route, or sets
//!   the `route-name` setting naming it; the plugin's own default `route-name` enables its
//!   route only when the operator grants it ([`HostConfig::grant_default_route`], as the
//!   CLI does for the plugin built into it).
//! - **Environment.** A host that reads settings from its environment uses
//!   [`env_overrides`]: a setting may name only variables with the plugin's own prefix
//!   ([`env_prefix`]) or ones the operator approved, and never the host's own, proxy or
//!   credential variables ([`forbidden_env`]).
//!
//! This module holds origins and the address rules (`config/origin.rs`) and the environment
//! rules (`config/env.rs`); [`HostConfig`] and its resolution are in `host_config.rs`.

#[cfg(doc)]
use crate::bindings::types::PluginManifest;
#[cfg(doc)]
use crate::{HostConfig, ResolvedConfig};

mod env;
mod origin;

pub use env::{EnvOverride, env_overrides, env_prefix, forbidden_env};
pub use origin::{AllowedOrigin, Origin, OriginScheme, Reach, is_public_ip};

/// The configuration key hosts set to their own name when the manifest declares it.
pub const USER_AGENT_KEY: &str = "user-agent";
