//! A throwaway PostgreSQL cluster per test: `initdb` in a temp dir, `postgres` on a loopback
//! port with password (SCRAM) authentication, stopped when the [`Cluster`] is dropped (a
//! panicking test included). Run as root, the server runs as the unprivileged `postgres`
//! user (or `nobody`), which initdb and postgres insist on.
//!
//! The server binaries are found in `PG_BIN`, else next to an `initdb` on `PATH`, else in
//! the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout). They are required: a
//! machine without them fails these tests (`scripts/test` installs them).

#![allow(dead_code)] // each test binary module uses a different part

use std::fs::{self, File};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The cluster's superuser, whom the tests connect as.
pub const USER: &str = "provider_test";
/// The database the backends use.
pub const DATABASE: &str = "secrets";

/// How long a start or stop may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running (or stopped) cluster of its own.
pub struct Cluster {
    dir: TempDir,
    data: PathBuf,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
    password: String,
    settings: Vec<(String, String)>,
    server: Option<Child>,
}

/// Who runs the server: `None` (ourselves) unless we are root.
fn server_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4 && fields[0] == wanted {
                let uid = fields[2].parse().expect("uid");
                let gid = fields[3].parse().expect("gid");
                return Some((uid, gid));
            }
        }
    }
    panic!(
        "running as root, but neither a `postgres` nor a `nobody` user exists to run the server as"
    );
}

/// The directory holding `initdb` and `postgres`.
fn server_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        if let Ok(initdb) = fs::canonicalize(dir.join("initdb")) {
            let real = initdb.parent().unwrap().to_path_buf();
            if real.join("postgres").is_file() {
                return real;
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "the PostgreSQL server (initdb, postgres) was not found: install it (Debian: \
             apt-get install postgresql; scripts/test does) or set PG_BIN to its bin directory"
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

impl Cluster {
    /// A new cluster, started, with the database [`DATABASE`].
    pub fn start() -> Self {
        Self::start_with(&[], |_| {})
    }

    /// A new cluster started with extra `-c` settings; `prepare` runs on the data directory
    /// first (e.g. to put certificate files there).
    pub fn start_with(settings: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Self {
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("provider-secrets-pg-")
            .tempdir()
            .unwrap();
        let owner = server_owner();
        chown(dir.path(), owner);
        let bin = server_bin();
        let password = format!("pw-{:016x}", rand_u64());
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, &password).unwrap();
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600)).unwrap();
        chown(&pwfile, owner);
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        let output = as_owner(&mut initdb, owner)
            .output()
            .expect("running initdb");
        assert!(
            output.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        fs::remove_file(&pwfile).unwrap();
        prepare(&data);
        // What `prepare` put there must be the server's too.
        for entry in fs::read_dir(&data).unwrap() {
            chown(&entry.unwrap().path(), owner);
        }
        let mut cluster = Self {
            dir,
            data,
            bin,
            owner,
            port: 0,
            password,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            server: None,
        };
        // Another process may take the free port before the server binds it: try again.
        for attempt in 0.. {
            cluster.port = free_port();
            match cluster.try_run() {
                Ok(()) => break,
                Err(log) if attempt < 4 && log.contains("could not bind") => {
                    eprintln!("postgres did not start, retrying on another port:\n{log}")
                }
                Err(log) => panic!("postgres did not start:\n{log}"),
            }
        }
        cluster
            .admin_on("postgres")
            .execute(&format!("CREATE DATABASE {DATABASE}"));
        eprintln!(
            "postgres cluster on 127.0.0.1:{} ready in {:?}",
            cluster.port,
            began.elapsed()
        );
        cluster
    }

    /// The directory the cluster lives in (data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Who owns the server's files (`None`: whoever runs the tests).
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }

    /// Gives `path` to the server's user (files it must read).
    pub fn give(&self, path: &Path) {
        chown(path, self.owner);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The URL of `database` with the cluster's credentials, plus `params` (`a=b&c=d`).
    pub fn url_with(&self, database: &str, params: &str) -> String {
        let mut url = format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        );
        if !params.is_empty() {
            url.push('?');
            url.push_str(params);
        }
        url
    }

    /// The URL of [`DATABASE`].
    pub fn url(&self) -> String {
        self.url_with(DATABASE, "")
    }

    /// Starts the server (again) on the cluster's port; `Err` holds its log when it exited.
    fn try_run(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            // A throwaway cluster: durability costs time and buys nothing.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"]);
        for (key, value) in &self.settings {
            command.args(["-c", &format!("{key}={value}")]);
        }
        let mut child = as_owner(&mut command, self.owner)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut text = String::new();
                File::open(&log_path)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                return Err(format!("exited with {status}:\n{text}"));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.accepts_queries() {
                self.server = Some(child);
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "postgres took over {PATIENCE:?} to start"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers a query (it listens before it accepts sessions).
    fn accepts_queries(&self) -> bool {
        Admin::try_connect(&self.url_with("postgres", "")).is_ok()
    }

    /// Stops the server (fast shutdown: sessions are ended, nothing waits), and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
    }

    /// Starts the stopped server again, same data, same port.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "the server is running");
        if let Err(log) = self.try_run() {
            panic!("postgres did not start again:\n{log}");
        }
    }

    /// A client of `database` for looking behind the backend's back.
    pub fn admin_on(&self, database: &str) -> Admin {
        Admin::try_connect(&self.url_with(database, ""))
            .unwrap_or_else(|e| panic!("connecting to {database}: {e}"))
    }

    /// A client of [`DATABASE`].
    pub fn admin(&self) -> Admin {
        self.admin_on(DATABASE)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        // std drops the supplementary groups too when root sets a uid.
        command.uid(uid).gid(gid);
    }
    command
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// A plain SQL client (tokio-postgres on a runtime of its own).
pub struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Admin {
    fn try_connect(url: &str) -> Result<Self, tokio_postgres::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(Self { runtime, client })
    }

    pub fn execute(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn try_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    pub fn execute_with(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> u64 {
        self.runtime
            .block_on(self.client.execute(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.runtime
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
