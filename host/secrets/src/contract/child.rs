//! Cross-process checks (a lock held by another process, a holder killed mid-write): a test
//! re-runs its own test binary as a child that plays one part of it, chosen by an
//! environment variable, and talks to it over the child's stdin and stdout.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

/// Re-runs this test binary for test `test_fn` of `module` alone (the caller's
/// `module_path!()`), with `env` set and stdin, stdout and stderr piped.
pub fn spawn(module: &str, test_fn: &str, env: &[(&str, &OsStr)]) -> Child {
    // module_path!() starts with the crate's name; libtest names tests without it.
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", &format!("{module}::{test_fn}"), "--nocapture"])
        .args(["--test-threads", "1"])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-running the test binary")
}

/// Reads the child's stdout up to a line containing `marker`; fails with the child's
/// output when it ends first.
pub fn wait_for_marker(out: &mut BufReader<ChildStdout>, marker: &str, child: &mut Child) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("the child's stdout") == 0 {
            let (status, stderr) = finish(child);
            panic!("child ended ({status}) before {marker}:\n{seen}\n{stderr}");
        }
        if line.contains(marker) {
            return;
        }
        seen.push_str(&line);
    }
}

/// Waits for the child; its status and what it wrote (stdout not yet taken, then
/// stderr).
pub fn finish(child: &mut Child) -> (ExitStatus, String) {
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).expect("the child's stdout");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).expect("the child's stderr");
    }
    (child.wait().expect("waiting for the child"), text)
}
