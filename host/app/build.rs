//! Builds the plugin component (`plugin/`, target wasm32-wasip2) so that `cargo build` or
//! `cargo test` of the host (or `pip install host/python`) needs no manual step. The nested cargo uses its own target
//! directory, the way wasmtime's test-programs do, so it never waits on the outer build's
//! lock. `PROVIDER_PLUGIN_WASM=/path/x.wasm` skips the build and embeds that path instead.
//!
//! The paths are also handed to the crates that depend on this one (this package `links`
//! `provider-plugin-component`): their build scripts read `DEP_PROVIDER_PLUGIN_COMPONENT_*`
//! (`COMPONENT`, `HOSTILE`, `ACME`), as `provider-host`'s does for its tests.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PROVIDER_PLUGIN_WASM");
    if let Ok(prebuilt) = env::var("PROVIDER_PLUGIN_WASM") {
        println!("cargo:rerun-if-changed={prebuilt}");
        println!("cargo:rustc-env=PROVIDER_PLUGIN_COMPONENT={prebuilt}");
        announce_digest(Path::new(&prebuilt));
        println!("cargo:rustc-env=HOSTILE_GUEST_COMPONENT=");
        println!("cargo:rustc-env=ACME_GUEST_COMPONENT=");
        announce_paths(&prebuilt, "", "");
        return;
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    // host/app → the workspace root.
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    for watched in [
        "wit",
        "plugin/src",
        "plugin/core/src",
        "plugin/redact",
        "plugin/Cargo.toml",
        "plugin/core/Cargo.toml",
        "tests/guests",
        "Cargo.lock",
    ] {
        rerun_if_changed_recursive(&workspace.join(watched));
    }

    // Beside the outer target dir, never inside OUT_DIR: the artifact should survive a
    // `cargo clean -p provider-host` and be shared by debug and release host builds.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_root = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target"));
    let plugin_target = target_root.join("plugin-component");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--package",
            "grok-provider-plugin",
            "--package",
            "hostile-guest",
            "--package",
            "acme-guest",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["--profile", "component", "--locked"])
        .arg("--target-dir")
        .arg(&plugin_target);
    // The outer build's flags (coverage, sanitizers, host-only RUSTFLAGS) must not leak
    // into the wasm build.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let status = cmd
        .status()
        .expect("failed to run cargo for the plugin component");
    if !status.success() {
        panic!(
            "building the plugin component failed (is the wasm32-wasip2 target installed? run `rustup toolchain install`)"
        );
    }
    let wasm = plugin_target.join("wasm32-wasip2/component/grok_provider_plugin.wasm");
    assert!(
        wasm.exists(),
        "plugin component missing at {}",
        wasm.display()
    );
    println!(
        "cargo:rustc-env=PROVIDER_PLUGIN_COMPONENT={}",
        wasm.display()
    );
    announce_digest(&wasm);
    // A misbehaving guest for the hardening tests (tests/guests/hostile).
    let hostile = plugin_target.join("wasm32-wasip2/component/hostile_guest.wasm");
    println!(
        "cargo:rustc-env=HOSTILE_GUEST_COMPONENT={}",
        hostile.display()
    );
    // A second, made-up vendor's plugin for the neutrality tests (tests/guests/acme).
    let acme = plugin_target.join("wasm32-wasip2/component/acme_guest.wasm");
    println!("cargo:rustc-env=ACME_GUEST_COMPONENT={}", acme.display());
    announce_paths(
        &wasm.display().to_string(),
        &hostile.display().to_string(),
        &acme.display().to_string(),
    );
}

/// The components' paths, for the build scripts of dependent crates (`links` metadata).
fn announce_paths(component: &str, hostile: &str, acme: &str) {
    println!("cargo::metadata=component={component}");
    println!("cargo::metadata=hostile={hostile}");
    println!("cargo::metadata=acme={acme}");
}

/// The component's SHA-256, for the crate that embeds it (so a call never hashes it).
fn announce_digest(wasm: &Path) {
    use sha2::Digest;
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("reading {}: {e}", wasm.display()));
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=PROVIDER_PLUGIN_SHA256={hex}");
}

fn rerun_if_changed_recursive(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            rerun_if_changed_recursive(&entry.path());
        }
    }
}
