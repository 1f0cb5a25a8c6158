//! Fair sharing of a small machine: the client and the upstream (this process) on one
//! core, the gateway under test on another, and what the gateway spent, read from `/proc`.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The cores of this process's affinity mask.
fn cores() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled by sched_getaffinity.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } == 0;
    if !ok {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn set_of(core: usize) -> libc::cpu_set_t {
    // SAFETY: as above; CPU_SET writes one bit of the set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(core, &mut set) };
    set
}

/// Which core the benchmark's own threads (client, reference servers) use and which the
/// gateway gets; `None` on a machine with one core (nothing is pinned then).
#[derive(Clone, Copy)]
pub struct Pinning {
    pub client: usize,
    pub gateway: usize,
}

impl Pinning {
    pub fn plan() -> Option<Pinning> {
        let cores = cores();
        (cores.len() >= 2).then(|| Pinning {
            client: cores[0],
            gateway: cores[1],
        })
    }

    /// Pins every thread of this process (tokio's workers were started before) to the
    /// client core; threads started later inherit it.
    pub fn pin_self(&self) -> Result<(), String> {
        let set = set_of(self.client);
        let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: sched_setaffinity on a thread id of this process with a valid set.
            if unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) } != 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
        }
        Ok(())
    }

    /// Every thread of this process back on all the cores it had (the other sections).
    pub fn unpin_self(&self, all: &[usize]) {
        // SAFETY: as in pin_self, with a set of the original cores.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in all {
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                if let Some(tid) = task
                    .file_name()
                    .to_str()
                    .and_then(|t| t.parse::<i32>().ok())
                {
                    unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
                }
            }
        }
    }

    /// `cmd`'s process (and whatever it starts) runs on the gateway core.
    pub fn pin_child(&self, cmd: &mut Command) {
        let set = set_of(self.gateway);
        // SAFETY: only sched_setaffinity (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}

/// Keeps a core from idling while alive: a thread of the lowest scheduling class
/// (`SCHED_IDLE`) spinning there, which any runnable task preempts at once. It takes no
/// time from the gateway; it spares the core the halt and the wake-up a virtual machine
/// pays each time the gateway waits for a peer (an exit to the hypervisor and back, after
/// which caches and branch predictors are cold), so that a figure taken with it shows the
/// gateway's own work.
pub struct Awake {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Awake {
    /// `None` when the spinner cannot be made `SCHED_IDLE` (it would then compete).
    pub fn keep(core: usize) -> Option<Awake> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let set = set_of(core);
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: both act on the calling thread (id 0) with valid arguments.
            let ok = unsafe {
                libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0
                    && libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0
            };
            let _ = ready.send(ok);
            if ok {
                while !flag.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            }
        });
        let mut awake = Awake {
            stop,
            thread: Some(thread),
        };
        if started.recv().unwrap_or(false) {
            Some(awake)
        } else {
            awake.finish();
            None
        }
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The cores this process may use now (to restore them after the section).
pub fn current_cores() -> Vec<usize> {
    cores()
}

/// CPU time (user + system) a process and its waited-for children have used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14..=17, i.e. indexes 11..=14 here.
    let ticks: u64 = f
        .get(11..15)?
        .iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
