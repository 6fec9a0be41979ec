//! What Linux's `/proc` says about a process: CPU time, resident memory, threads, open
//! files. A process that is gone reads as zero.

use std::path::Path;

/// User plus system CPU time in a `stat` file's text (`/proc/PID/stat` or a thread's
/// `/proc/PID/task/TID/stat`), in clock ticks.
fn stat_ticks(stat: &str) -> u64 {
    // Fields after the parenthesised command name (which may hold spaces): state is
    // field 3, utime field 14, stime field 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// CPU time (user + system) used so far by process `pid`, all threads, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&read(format!("/proc/{pid}/stat")))
}

/// CPU time used so far by this process's threads whose name starts with `prefix` (a
/// node's threads are named after it: `NAME-net`, `NAME-w3`...), in clock ticks.
pub fn own_thread_cpu_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| read(t.path().join("comm")).starts_with(prefix))
        .map(|t| stat_ticks(&read(t.path().join("stat"))))
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that cannot be run).
pub fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn status_field(pid: u32, field: &str) -> u64 {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Threads of process `pid`.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Threads of process `pid` whose name starts with `prefix` (the kernel keeps 15 bytes
/// of a name).
pub fn threads_named(pid: u32, prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| read(t.path().join("comm")).starts_with(prefix))
        .count()
}

/// Open file descriptors of process `pid`.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The soft limit on open files of this process (`/proc/self/limits`; 1024 if unknown).
pub fn open_files_limit() -> u64 {
    read("/proc/self/limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

/// Whether process `pid` holds a TCP socket listening on `port` (IPv4, any address):
/// the listening socket's inode in `/proc/net/tcp` is among the process's open files.
pub fn listens_on(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let want = format!(":{port:04X}");
    let inodes: Vec<String> = read("/proc/net/tcp")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            (local.ends_with(&want) && *state == LISTEN).then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}
