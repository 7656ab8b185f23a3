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

/// The dependency graph of the workspace from `cargo metadata` (Linux target).
struct Graph {
    packages: Vec<serde_json::Value>,
    nodes: Vec<serde_json::Value>,
}

/// What kind of dependency an edge is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Dev,
    Build,
}

impl Graph {
    fn load() -> Graph {
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
        Graph {
            packages: meta["packages"].as_array().expect("packages").clone(),
            nodes: meta["resolve"]["nodes"]
                .as_array()
                .expect("resolve")
                .clone(),
        }
    }

    fn id(&self, name: &str) -> String {
        self.packages
            .iter()
            .find(|p| p["name"] == name && p["source"].is_null())
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("{name} is not a workspace crate"))
            .to_owned()
    }

    fn name(&self, id: &str) -> String {
        self.packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(id)
            .to_owned()
    }

    /// The workspace crates (those under crates/).
    fn workspace(&self) -> Vec<String> {
        self.packages
            .iter()
            .filter(|p| p["source"].is_null())
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect()
    }

    /// The direct dependencies of `id` of the given kind (ids).
    fn direct(&self, id: &str, kind: Kind) -> Vec<String> {
        let wanted = |k: &serde_json::Value| match kind {
            Kind::Normal => k["kind"].is_null(),
            Kind::Dev => k["kind"] == "dev",
            Kind::Build => k["kind"] == "build",
        };
        self.nodes
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| {
                n["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .filter(|d| d["dep_kinds"].as_array().expect("kinds").iter().any(wanted))
                    .map(|d| d["pkg"].as_str().expect("pkg").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names of the direct dependencies of crate `name` of the given kind.
    fn direct_names(&self, name: &str, kind: Kind) -> BTreeSet<String> {
        self.direct(&self.id(name), kind)
            .iter()
            .map(|id| self.name(id))
            .collect()
    }

    /// The names of everything crate `name` is built with (normal dependencies, transitively:
    /// what ends up in the library and the binary).
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.id(name)];
        while let Some(id) = stack.pop() {
            for dep in self.direct(&id, Kind::Normal) {
                if seen.insert(dep.clone()) {
                    stack.push(dep);
                }
            }
        }
        seen.iter().map(|id| self.name(id)).collect()
    }
}

/// `ban` matches a crate name exactly, or as a prefix when it ends with `-` or `_`.
fn hits(dep: &str, ban: &str) -> bool {
    if ban.ends_with('-') || ban.ends_with('_') {
        dep.starts_with(ban)
    } else {
        dep == ban
    }
}

/// HTTP stacks.
const HTTP: &[&str] = &[
    "axum",
    "axum-core",
    "hyper",
    "http",
    "tower",
    "tower-http",
    "reqwest",
];
/// SQL drivers.
const SQL: &[&str] = &[
    "sqlx",
    "sqlx-",
    "libsqlite3-sys",
    "rusqlite",
    "postgres",
    "tokio-postgres",
];
/// Async runtimes.
const RUNTIMES: &[&str] = &["tokio", "async-std", "smol", "async-executor", "async-io"];

/// What each layer must never be built with (normal dependencies, transitively), per the
/// "Invariant" and "Boundary" paragraphs of ARCHITECTURE.md.
fn forbidden() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
    let mut token = vec!["tessera-", "chrono", "time"];
    token.extend(HTTP);
    token.extend(SQL);
    token.extend(RUNTIMES);
    let mut domain = vec![
        "tessera-server",
        "tessera-cli",
        "tessera-store-",
        "tessera-testkit",
    ];
    domain.extend(HTTP);
    domain.extend(SQL);
    domain.extend(RUNTIMES);
    let mut stores = vec!["tessera-server", "tessera-cli", "tessera-testkit"];
    stores.extend(HTTP);
    vec![
        (
            "tessera-token",
            token,
            "no I/O, no clock, no async runtime, no tessera crate",
        ),
        (
            "tessera-domain",
            domain,
            "no HTTP type, no SQL driver, no async runtime",
        ),
        (
            "tessera-store-sqlite",
            stores.clone(),
            "a store knows no HTTP and no server",
        ),
        (
            "tessera-store-postgres",
            stores.clone(),
            "a store knows no HTTP and no server",
        ),
        (
            "tessera-store-sql",
            stores,
            "a store knows no HTTP and no server",
        ),
        (
            "tessera-server",
            vec![
                "tessera-store-",
                "tessera-cli",
                "tessera-testkit",
                "sqlx",
                "sqlx-",
            ],
            "never names a concrete store",
        ),
        (
            "tessera-testkit",
            vec!["tessera-store-", "tessera-server", "tessera-cli"],
            "names no concrete store",
        ),
        (
            "tessera-delivery",
            {
                let mut delivery = vec![
                    "tessera-server",
                    "tessera-cli",
                    "tessera-store-",
                    "tessera-testkit",
                ];
                delivery.extend(SQL);
                delivery
            },
            "the delivery adapters know the domain, not the server, the stores or SQL",
        ),
    ]
}

/// The only direct (normal) dependencies of each store: tessera-domain and sqlx, plus two
/// helpers that carry no I/O (async-trait for the traits, serde_json for the JSON columns).
/// In particular no async runtime: sqlx brings its own.
const STORE_DEPENDENCIES: &[&str] = &["tessera-domain", "sqlx", "async-trait", "serde_json"];

#[test]
fn dependency_rules_hold() {
    let graph = Graph::load();
    for (krate, banned, rule) in forbidden() {
        for dep in graph.closure(krate) {
            for ban in &banned {
                assert!(
                    !hits(&dep, ban),
                    "{krate} must not depend on {dep}: {rule} (ARCHITECTURE.md)"
                );
            }
        }
    }
    for store in ["tessera-store-sqlite", "tessera-store-postgres"] {
        for dep in graph.direct_names(store, Kind::Normal) {
            assert!(
                STORE_DEPENDENCIES.contains(&dep.as_str()) || dep == "tessera-store-sql",
                "{store} depends on {dep} directly: a store depends on tessera-domain and \
                 sqlx only (ARCHITECTURE.md)"
            );
        }
    }
    for dep in graph.direct_names("tessera-store-sql", Kind::Normal) {
        assert!(
            STORE_DEPENDENCIES.contains(&dep.as_str()),
            "tessera-store-sql depends on {dep} directly: the SQL layer depends on \
             tessera-domain and sqlx only (ARCHITECTURE.md)"
        );
    }
    // The SQL layer names no driver: each backend crate enables its own sqlx feature.
    // (`cargo metadata` unifies features across the workspace, so the manifest is what says
    // what this crate asks for.)
    let sql_layer = graph
        .packages
        .iter()
        .find(|p| p["name"] == "tessera-store-sql" && p["source"].is_null())
        .expect("tessera-store-sql");
    for dep in sql_layer["dependencies"].as_array().expect("dependencies") {
        if dep["name"] == "sqlx" {
            for feature in dep["features"].as_array().expect("features") {
                let feature = feature.as_str().expect("feature");
                assert!(
                    !["sqlite", "sqlite-bundled", "postgres", "mysql", "any"]
                        .iter()
                        .any(|driver| feature.starts_with(driver)),
                    "tessera-store-sql enables sqlx's {feature}: the SQL layer names no \
                     driver (ARCHITECTURE.md)"
                );
            }
        }
    }
    // Only the backend crates (and the composition root through them) use the SQL layer.
    for krate in graph.workspace() {
        if !["tessera-store-sqlite", "tessera-store-postgres"].contains(&krate.as_str()) {
            assert!(
                !graph
                    .direct_names(&krate, Kind::Normal)
                    .contains("tessera-store-sql"),
                "{krate} depends on tessera-store-sql: only the backend crates do (ARCHITECTURE.md)"
            );
        }
    }
    // tessera-delivery: among tessera crates it depends on the domain only, and only the
    // composition root (and the server, to send codes from its routes) depends on it.
    for dep in graph.direct_names("tessera-delivery", Kind::Normal) {
        assert!(
            !dep.starts_with("tessera-") || dep == "tessera-domain",
            "tessera-delivery depends on {dep}: it depends on tessera-domain only among tessera \
             crates (ARCHITECTURE.md)"
        );
    }
    for krate in graph.workspace() {
        if !["tessera-cli", "tessera-server"].contains(&krate.as_str()) {
            assert!(
                !graph
                    .direct_names(&krate, Kind::Normal)
                    .contains("tessera-delivery"),
                "{krate} depends on tessera-delivery: only the composition root (tessera-cli) \
                 and tessera-server may (ARCHITECTURE.md)"
            );
        }
    }
    for krate in graph.workspace() {
        // tessera-testkit is a dev-dependency only, never a normal or build one.
        for kind in [Kind::Normal, Kind::Build] {
            assert!(
                !graph.direct_names(&krate, kind).contains("tessera-testkit"),
                "{krate} depends on tessera-testkit outside [dev-dependencies] (ARCHITECTURE.md)"
            );
        }
        // anyhow is allowed in the CLI only, in any kind of dependency: libraries have typed
        // errors, and their tests check them.
        if krate != "tessera-cli" {
            for kind in [Kind::Normal, Kind::Dev, Kind::Build] {
                assert!(
                    !graph.direct_names(&krate, kind).contains("anyhow"),
                    "{krate} depends on anyhow: allowed in tessera-cli only (ARCHITECTURE.md)"
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

/// The rules are not vacuous: each one would catch the dependency it forbids in the graph as
/// it is (the CLI has all of them).
#[test]
fn dependency_rules_can_fail() {
    let graph = Graph::load();
    let cli = graph.closure("tessera-cli");
    for (_, banned, _) in forbidden() {
        for ban in ["tessera-store-", "tokio", "axum", "sqlx"] {
            if banned.contains(&ban) {
                assert!(cli.iter().any(|d| hits(d, ban)), "{ban} never matches");
            }
        }
    }
    assert!(
        graph
            .direct_names("tessera-cli", Kind::Normal)
            .contains("anyhow")
    );
    assert!(
        graph
            .direct_names("tessera-cli", Kind::Normal)
            .contains("tessera-delivery")
    );
    assert!(
        graph
            .direct_names("tessera-delivery", Kind::Normal)
            .contains("tessera-domain")
    );
    assert!(
        graph
            .direct_names("tessera-store-sqlite", Kind::Dev)
            .contains("tessera-testkit")
    );
    assert!(
        graph
            .direct_names("tessera-store-sqlite", Kind::Normal)
            .contains("sqlx")
    );
}
