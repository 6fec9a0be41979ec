//! `scripts/bench-compare`'s tabulation, on hand-made captures (`--beam`/`--ours`): it
//! never runs a benchmark. Skipped, with a note, where `bash` or `awk` is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether `prog` is an executable on the PATH; prints a skip note when it is not.
fn on_path(prog: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(prog).is_file()));
    if !found {
        eprintln!("note: no `{prog}` on PATH; skipping this bench-compare test");
    }
    found
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "oxbeam-bench-compare-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_compare(out: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-compare");
    Command::new("bash")
        .arg(script)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run bash")
}

/// The whitespace-separated cells of `name`'s row in the terminal table.
fn row(stdout: &str, name: &str) -> Vec<String> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{stdout}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// As the harness prints it (run.sh's stdout, under the script's `#@` lines).
const BEAM: &str = "\
#@ run=20260101-120000
#@ date=2026-01-01 12:00 UTC
#@ nproc=2
#@ cpu=Test CPU
#@ otp=25.2.3 (jit)
spawn_rate_per_s 700000 procs/s
local_pingpong_rtt_ns 500.0 ns
ring_hops_per_s 3000000 hops/s
remote_pingpong_rtt_same_cpu_us 20.0 us
erpc_call_latency_us 64.09 us
pg_join_propagation_us 14.84 us
global_register_latency_us NaN us
";

/// As `cargo bench --bench suite` prints it, with some chatter.
const OURS: &str = "\
#@ run=20260101-120000
#@ date=2026-01-01 12:02 UTC
#@ rev=abc1234
  local_pingpong_rtt_ns rep 1: 250.5
spawn_rate_per_s 1000000 procs/s
local_pingpong_rtt_ns 250.000 ns
ring_hops_per_s 9000000 hops/s
remote_pingpong_rtt_same_cpu_us 15.000 us
pg_join_propagation_us 20.000 us
global_register_latency_us 50.000 us
new_metric_per_s 42 things/s
";

#[test]
fn tabulates_both_sides_with_the_issue_targets() {
    if !on_path("bash") || !on_path("awk") {
        return;
    }
    let s = Scratch::new("both");
    let beam = s.file("beam.txt", BEAM);
    let ours = s.file("ours.txt", OURS);
    let out = bench_compare(
        &s.0.join("out"),
        &[
            "--beam",
            beam.to_str().unwrap(),
            "--ours",
            ours.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Lower is better: BEAM/oxbeam; exactly on the target passes.
    assert_eq!(
        row(&stdout, "local_pingpong_rtt_ns")[1..],
        ["500.0", "250.0", "ns", "2.00x", ">=", "2x", "pass"]
    );
    // Higher is better: oxbeam/BEAM.
    assert_eq!(
        row(&stdout, "spawn_rate_per_s")[1..],
        [
            "700", "000", "1", "000", "000", "procs/s", "1.43x", ">=", "2x", "miss"
        ]
    );
    assert_eq!(
        row(&stdout, "ring_hops_per_s")[1..],
        [
            "3", "000", "000", "9", "000", "000", "hops/s", "3.00x", ">=", "2x", "pass"
        ]
    );
    // <= 0.75x of BEAM: 15 us against 20 us is on the line.
    assert_eq!(
        row(&stdout, "remote_pingpong_rtt_same_cpu_us")[1..],
        ["20.00", "15.00", "us", "1.33x", ">=", "1.33x", "pass"]
    );
    assert_eq!(
        row(&stdout, "pg_join_propagation_us")[1..],
        ["14.84", "20.00", "us", "0.74x", ">=", "1x", "miss"]
    );
    // One side only, a failed metric, a metric nobody knows.
    assert_eq!(
        row(&stdout, "erpc_call_latency_us")[1..],
        ["64.09", "-", "us", "-", "-"]
    );
    assert_eq!(
        row(&stdout, "global_register_latency_us")[1..],
        ["NaN", "50.00", "us", "-", ">=", "10x", "n/a"]
    );
    assert_eq!(
        row(&stdout, "new_metric_per_s")[1..],
        ["-", "42.00", "things/s", "-", "-"]
    );
    assert!(
        stdout.contains("3 pass, 2 miss, 1 not measured"),
        "{stdout}"
    );
    // The harness's row order, whatever the order in the captures.
    let pos = |n: &str| stdout.find(&format!("\n{n} ")).expect(n);
    assert!(pos("spawn_rate_per_s") < pos("local_pingpong_rtt_ns"));
    assert!(pos("ring_hops_per_s") < pos("remote_pingpong_rtt_same_cpu_us"));

    let md = std::fs::read_to_string(s.0.join("out/compare.md")).expect("compare.md");
    assert!(
        md.contains(
            "Measured 2026-01-01 12:00 UTC, nproc 2, Test CPU, Erlang/OTP 25.2.3 (jit), \
             oxbeam abc1234; medians, BEAM harness first"
        ),
        "{md}"
    );
    assert!(md.contains("| workload | BEAM | oxbeam | unit | ratio | target | met |"));
    assert!(md.contains("| local_pingpong_rtt_ns | 500.0 | 250.0 | ns | 2.00x | ≥ 2x | pass |"));
    assert!(
        md.contains("| spawn_rate_per_s | 700 000 | 1 000 000 | procs/s | 1.43x | ≥ 2x | miss |")
    );
}

#[test]
fn our_column_alone_and_a_subset() {
    if !on_path("bash") || !on_path("awk") {
        return;
    }
    let s = Scratch::new("ours");
    let ours = s.file("ours.txt", OURS);
    let out = bench_compare(
        &s.0.join("out"),
        &[
            "--no-beam",
            "--ours",
            ours.to_str().unwrap(),
            "--only",
            "ring",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        row(&stdout, "workload")[1..],
        ["oxbeam", "unit"],
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "ring_hops_per_s")[1..],
        ["9", "000", "000", "hops/s"]
    );
    assert!(!stdout.contains("local_pingpong_rtt_ns"), "{stdout}");
    let md = std::fs::read_to_string(s.0.join("out/compare.md")).expect("compare.md");
    assert!(
        md.contains("| ring_hops_per_s | 9 000 000 | hops/s |"),
        "{md}"
    );
}

#[test]
fn usage_errors_exit_2() {
    if !on_path("bash") || !on_path("awk") {
        return;
    }
    let s = Scratch::new("usage");
    let ours = s.file("ours.txt", OURS);
    let ours = ours.to_str().unwrap();
    for args in [
        &["--ours", ours, "--no-beam", "--only", "ring,nonesuch"][..],
        &["--ours", ours, "--no-beam", "--beam", ours][..],
        &["--ours", "/nonexistent/ours.txt", "--no-beam"][..],
        &["--frobnicate"][..],
    ] {
        let out = bench_compare(&s.0.join("out"), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
