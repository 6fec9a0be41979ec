//! The workspace's shape, checked from cargo's own resolution (`cargo tree`):
//! - each layer depends on the layers below it only (term <- rt <- node <- dist <-
//!   oxbeam <- oxbeam-cli), so an upward `use` does not compile: the crate is not in
//!   scope, and adding it to the manifest makes a dependency cycle cargo refuses;
//! - a program that depends on `oxbeam` compiles no terminal crate (rustyline,
//!   signal-hook, env_logger live in `oxbeam-cli` alone).

use std::process::Command;

/// Every package in the normal (non-dev, non-build) dependency tree of `package`.
fn normal_deps(package: &str) -> Vec<String> {
    deps_by(package, "normal")
}

/// Every package in `package`'s tree along the `edges` kinds (`cargo tree -e`).
fn deps_by(package: &str, edges: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            edges,
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut deps: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != package)
        .collect();
    deps.sort();
    deps.dedup();
    deps
}

/// The workspace's own crates among `deps`.
fn layers(deps: &[String]) -> Vec<&str> {
    deps.iter()
        .map(String::as_str)
        .filter(|d| *d == "oxbeam" || d.starts_with("oxbeam-"))
        .collect()
}

#[test]
fn each_layer_sees_only_the_layers_below() {
    let expect: &[(&str, &[&str])] = &[
        ("oxbeam-term", &[]),
        ("oxbeam-rt", &["oxbeam-term"]),
        ("oxbeam-node", &["oxbeam-rt", "oxbeam-term"]),
        ("oxbeam-dist", &["oxbeam-node", "oxbeam-rt", "oxbeam-term"]),
        (
            "oxbeam-services",
            &["oxbeam-dist", "oxbeam-node", "oxbeam-rt", "oxbeam-term"],
        ),
        (
            "oxbeam",
            &[
                "oxbeam-dist",
                "oxbeam-node",
                "oxbeam-rt",
                "oxbeam-services",
                "oxbeam-term",
            ],
        ),
        (
            "oxbeam-cli",
            &[
                "oxbeam",
                "oxbeam-dist",
                "oxbeam-node",
                "oxbeam-rt",
                "oxbeam-services",
                "oxbeam-term",
            ],
        ),
    ];
    for (package, below) in expect {
        let deps = normal_deps(package);
        assert_eq!(
            layers(&deps),
            *below,
            "{package} depends on exactly these layers"
        );
    }
}

#[test]
fn a_program_linking_oxbeam_compiles_no_terminal_crate() {
    let terminal = ["rustyline", "signal-hook", "env_logger", "nix", "termios"];
    let deps = normal_deps("oxbeam");
    for t in terminal {
        assert!(
            !deps.iter().any(|d| d == t),
            "oxbeam depends on {t}: {deps:?}"
        );
    }
    // The check can fail: the command-line crate does have them.
    let cli = normal_deps("oxbeam-cli");
    for t in ["rustyline", "signal-hook", "env_logger"] {
        assert!(cli.iter().any(|d| d == t), "oxbeam-cli lacks {t}: {cli:?}");
    }
}

#[test]
fn no_async_runtime_anywhere() {
    let runtimes = [
        "tokio",
        "async-std",
        "smol",
        "futures-executor",
        "async-executor",
    ];
    for package in ["oxbeam", "oxbeam-cli"] {
        let deps = normal_deps(package);
        for r in runtimes {
            assert!(!deps.iter().any(|d| d == r), "{package} pulls in {r}");
        }
    }
    // The model checker the services' tests use, too.
    let deps = deps_by("oxbeam-services", "normal,dev");
    assert!(deps.iter().any(|d| d == "stateright"), "{deps:?}");
    for r in runtimes {
        assert!(
            !deps.iter().any(|d| d == r),
            "oxbeam-services' tests pull in {r}"
        );
    }
}
