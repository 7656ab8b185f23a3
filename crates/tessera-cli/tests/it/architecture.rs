//! ARCHITECTURE.md is tested against the tree: every crate has a heading and every heading a
//! crate, and the dependency rules it states hold in `cargo metadata`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_crate_has_a_heading_and_every_heading_a_crate() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let headings: BTreeSet<String> = map
        .lines()
        .filter_map(|l| l.strip_prefix("### crates/"))
        .map(|s| s.trim().to_owned())
        .collect();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        headings, crates,
        "ARCHITECTURE.md code map and crates/ disagree"
    );
}

/// Crates a layer must never depend on (normal dependencies, transitively).
const FORBIDDEN: &[(&str, &[&str])] = &[(
    "tessera-token",
    &[
        "tessera-",
        "tokio",
        "axum",
        "hyper",
        "sqlx",
        "reqwest",
        "async-std",
        "chrono",
        "time",
    ],
)];

#[test]
fn dependency_rules_hold() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let name_of = |id: &str| -> String {
        packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(id)
            .to_owned()
    };
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve");
    let normal_deps = |id: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| {
                n["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .filter(|d| {
                        d["dep_kinds"]
                            .as_array()
                            .expect("kinds")
                            .iter()
                            .any(|k| k["kind"].is_null())
                    })
                    .map(|d| d["pkg"].as_str().expect("pkg").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (krate, banned) in FORBIDDEN {
        let start = packages
            .iter()
            .find(|p| p["name"] == *krate)
            .and_then(|p| p["id"].as_str())
            .expect("crate in workspace")
            .to_owned();
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(id) = stack.pop() {
            for dep in normal_deps(&id) {
                if seen.insert(dep.clone()) {
                    stack.push(dep);
                }
            }
        }
        for dep in seen.iter().map(|id| name_of(id)) {
            for ban in *banned {
                let hit = if ban.ends_with('-') {
                    dep.starts_with(ban)
                } else {
                    dep == *ban
                };
                assert!(
                    !hit,
                    "{krate} must not depend on {dep} (ARCHITECTURE.md invariant)"
                );
            }
        }
    }
}

/// `Hasher::insecure_fast_for_tests` (tessera-domain's `test-support` feature) is out of reach
/// of the release binary: no normal dependency path of any workspace crate (but the dev-only
/// testkit) enables the feature; only dev-dependencies (through tessera-testkit) do. The control run checks that the query
/// does see the feature when dev-dependencies are included.
#[test]
fn the_release_binary_has_no_test_support() {
    let tree = |edges: &str| -> String {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--workspace",
                "--exclude",
                "tessera-testkit",
                "-e",
                edges,
                "--prefix",
                "none",
            ])
            .current_dir(root())
            .output()
            .expect("cargo tree");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let feature = "tessera-domain feature \"test-support\"";
    assert!(
        tree("features,normal,dev").contains(feature),
        "the control: dev-dependencies enable it"
    );
    assert!(
        !tree("features,normal,build").contains(feature),
        "a normal dependency enables tessera-domain's test-support feature"
    );
}
