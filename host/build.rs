//! The components `provider-app`'s build script built (the plugin, and the test guests),
//! named to this crate's tests and benchmarks as `PROVIDER_PLUGIN_COMPONENT`,
//! `HOSTILE_GUEST_COMPONENT` and `ACME_GUEST_COMPONENT`. The binary itself embeds the plugin
//! through `provider-app`.

fn main() {
    // `provider-app` links `provider-plugin-component`: cargo hands its metadata over as
    // DEP_PROVIDER_PLUGIN_COMPONENT_<KEY>.
    println!("cargo:rerun-if-env-changed=PROVIDER_PLUGIN_WASM");
    for (key, var) in [
        ("COMPONENT", "PROVIDER_PLUGIN_COMPONENT"),
        ("HOSTILE", "HOSTILE_GUEST_COMPONENT"),
        ("ACME", "ACME_GUEST_COMPONENT"),
    ] {
        let path = std::env::var(format!("DEP_PROVIDER_PLUGIN_COMPONENT_{key}"))
            .unwrap_or_else(|_| panic!("provider-app did not name its {key} component"));
        println!("cargo:rustc-env={var}={path}");
    }
}
