//! `tessera bench forward-auth`: a load test (not a test) of the forward-auth hot path and of
//! login, against servers running inside this process, driven by wrk in separate processes.
//!
//! In one run it measures a ceiling (a bare axum handler on the same kind of tokio runtime),
//! `GET /auth/verify` with a valid and with forged cookies, `POST /login` against the raw
//! argon2id rate of `Hasher`, and `/auth/verify` latency during a login flood. Server CPU per
//! request comes from this process's own counters (`/proc/self/stat`), which is why the load
//! generator must be another process. Numbers and verdicts are printed as a table.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tessera_domain::account::{NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::clock::Clock;
use tessera_domain::credential::password::{HashParams, Hasher, Password};
use tessera_server::config::ThrottleConfig;
use tessera_server::{AppState, BlockingPasswords, ServerConfig};

use crate::serve::{SystemClock, runtime};

mod cpu;
mod factors;
mod wrk;

use cpu::Usage;
use wrk::{Load, Report, Wrk};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Load-test /auth/verify and POST /login against in-process servers, with wrk.
    ForwardAuth(ForwardAuthArgs),
    /// Cost of one TOTP, sent-code and recovery-code check (with the store) next to one
    /// password check, and sign-ins/s with password + TOTP vs password alone over HTTP.
    Factors(factors::FactorsArgs),
}

/// The scenarios, in the order they run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// A bare axum handler returning 200.
    Ceiling,
    /// `/auth/verify` with a valid session cookie.
    Valid,
    /// `/auth/verify` with random, well-formed, unsealed cookies.
    Forged,
    /// The raw argon2id rate of `Hasher` on every core.
    Hash,
    /// `POST /login` with the right password.
    Login,
    /// `/auth/verify` and `POST /login` at once.
    Flood,
}

/// `tessera bench forward-auth` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct ForwardAuthArgs {
    /// Seconds per measured scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// wrk connections for the ceiling and /auth/verify loads. Under a closed loop, latency at
    /// saturation grows with this number (about connections / throughput).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads per load generator.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// wrk connections for the login loads [default: 4 per password-hashing slot].
    #[arg(long)]
    login_connections: Option<u32>,
    /// Concurrent password hashes in the server [default: the server's, one per CPU].
    #[arg(long)]
    hash_concurrency: Option<usize>,
    /// Server log level (`off`, `info`, `debug`, …), formatted into a sink: the cost of
    /// producing log lines without a terminal's. `serve` defaults to `info`.
    #[arg(long, default_value = "off")]
    server_log: String,
    /// Async worker threads of the servers (both the ceiling and tessera) [default: 0, one per
    /// CPU, as `serve` runs]. With 1 on a 2-CPU machine the servers and wrk each have a core
    /// and do not preempt each other, which steadies the ratios and the p99.
    #[arg(long, default_value_t = 0)]
    server_threads: usize,
    /// Interleaved rounds of the ceiling, valid and forged loads; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds of unmeasured load before each HTTP scenario.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Run only these scenarios (comma-separated). Ratios need the ceiling.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// The wrk program.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// Also print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

pub(crate) fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::ForwardAuth(args) => forward_auth(args),
        BenchCommand::Factors(args) => factors::run(args),
    }
}

/// The user the benchmark signs in as.
const USERNAME: &str = "bench-user";

/// One measured line of the table.
#[derive(Clone, Debug, Default)]
struct Row {
    name: String,
    rate: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// Server CPU per operation, in microseconds.
    server_us: Option<f64>,
    /// Load-generator CPU per operation, in microseconds.
    client_us: Option<f64>,
    /// Load of the rest of the machine during the scenario, in cores.
    other_cores: f64,
    note: String,
}

impl Row {
    /// Each metric's median over `rows` (upper median for an even count); the most loaded
    /// machine seen in any of them.
    fn median(rows: &[Row]) -> Option<Row> {
        let first = rows.first()?;
        fn mid(mut v: Vec<f64>) -> f64 {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        }
        let opt = |f: fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter_map(f).collect();
            (v.len() == rows.len()).then(|| mid(v))
        };
        Some(Row {
            name: first.name.clone(),
            rate: mid(rows.iter().map(|r| r.rate).collect()),
            p50_ms: opt(|r| r.p50_ms),
            p99_ms: opt(|r| r.p99_ms),
            server_us: opt(|r| r.server_us),
            client_us: opt(|r| r.client_us),
            other_cores: rows.iter().map(|r| r.other_cores).fold(0.0, f64::max),
            note: if rows.len() > 1 {
                let note = format!("median of {} rounds", rows.len());
                if first.note.is_empty() {
                    note
                } else {
                    format!("{}; {note}", first.note)
                }
            } else {
                first.note.clone()
            },
        })
    }

    fn http(name: &str, r: &Report, ok_only: bool, u: &Usage) -> Row {
        let rate = if ok_only {
            r.ok_per_second()
        } else {
            r.per_second()
        };
        let n = r.requests.max(1) as f64;
        Row {
            name: name.into(),
            rate,
            p50_ms: Some(r.p50_us / 1000.0),
            p99_ms: Some(r.p99_us / 1000.0),
            server_us: Some(u.server / n * 1e6),
            client_us: Some(u.client / n * 1e6),
            other_cores: u.other_cores(),
            note: String::new(),
        }
    }
}

struct Bench {
    args: ForwardAuthArgs,
    wrk: Wrk,
    hz: f64,
    ceiling: SocketAddr,
    tessera: SocketAddr,
    cookie_header: String,
    login_body: String,
    login_connections: u32,
}

impl Bench {
    fn wants(&self, s: Scenario) -> bool {
        self.args.only.is_empty() || self.args.only.contains(&s)
    }

    fn warm(&self, name: &str, load: &Load<'_>, addr: SocketAddr) -> Result<()> {
        if self.args.warmup > 0 {
            self.wrk
                .start(
                    &format!("{name}-warmup"),
                    load,
                    addr,
                    self.args.threads,
                    self.args.connections,
                    self.args.warmup,
                )?
                .finish()?;
        }
        Ok(())
    }

    /// Runs one wrk load against `addr` and measures the CPU around it.
    fn http(
        &self,
        name: &str,
        load: &Load<'_>,
        addr: SocketAddr,
        connections: u32,
    ) -> Result<(Report, Usage)> {
        let before = cpu::snapshot()?;
        let report = self
            .wrk
            .start(
                name,
                load,
                addr,
                self.args.threads,
                connections,
                self.args.seconds,
            )?
            .finish()?;
        let after = cpu::snapshot()?;
        Ok((report, cpu::usage(&before, &after, self.hz)))
    }
}

fn forward_auth(args: ForwardAuthArgs) -> Result<()> {
    ensure!(args.seconds >= 1, "--seconds must be at least 1");
    ensure!(
        args.connections >= 1 && args.threads >= 1,
        "--connections and --threads must be at least 1"
    );
    let dir = TempDir::new()?;
    let wrk = Wrk {
        program: args.wrk.clone(),
        dir: dir.0.clone(),
    };
    let wrk_version = wrk.check()?;
    init_logging(&args.server_log)?;
    let hz = cpu::ticks_per_second();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // What else is running: one second of the machine's CPU before anything starts.
    let quiet_before = cpu::snapshot()?;
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu::usage(&quiet_before, &cpu::snapshot()?, hz);

    println!("tessera bench forward-auth");
    println!("  machine:   {cores} CPU(s), {}", cpu::cpu_model());
    println!(
        "  load:      loadavg {} at start; other processes used {:.2} core(s) in the second before",
        cpu::loadavg(),
        idle.other_cores()
    );
    if idle.other_cores() > 0.2 {
        println!(
            "  WARNING:   the machine is not idle; numbers will be low and noisy (see `top -bn1`)"
        );
    }
    println!("  generator: {wrk_version}, separate process");

    let rt = match args.server_threads {
        0 => runtime()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .context("starting the async runtime")?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let setup = rt.block_on(setup(&dir.0, args.hash_concurrency, stop.clone()))?;
    let hash_concurrency = setup.hash_concurrency;
    let login_connections = args
        .login_connections
        .unwrap_or((4 * hash_concurrency) as u32)
        .clamp(1, (hash_concurrency + QUEUE) as u32);
    println!(
        "  settings:  {} s per scenario (+{} s warm-up), ceiling/valid/forged in {} interleaved round(s), \
         {} connection(s) over {} wrk thread(s) for GETs, {login_connections} for logins; \
         hash_concurrency {hash_concurrency} (threads at nice 10); server log {:?}",
        args.seconds,
        args.warmup,
        args.rounds.max(1),
        args.connections,
        args.threads,
        args.server_log
    );
    println!(
        "  servers:   ceiling http://{}  tessera http://{} (SQLite in {})",
        setup.ceiling,
        setup.tessera,
        dir.0.display()
    );

    // A real login, over HTTP, for the cookie; then a check that forward-auth accepts it.
    let login_body = format!(
        r#"{{"username":"{USERNAME}","password":"{}"}}"#,
        setup.password
    );
    let cookie = login(setup.tessera, &login_body)?;
    let cookie_header = format!("tessera={cookie}");
    let (status, head) = get(setup.tessera, "/auth/verify", Some(&cookie_header))?;
    ensure!(
        status == 200
            && head
                .to_ascii_lowercase()
                .contains(&format!("x-tessera-user: {USERNAME}")),
        "/auth/verify refused the freshly issued cookie (status {status})"
    );
    let (status, _) = get(
        setup.tessera,
        "/auth/verify",
        Some("tessera=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"),
    )?;
    ensure!(
        status == 401,
        "/auth/verify answered {status} to a forged cookie, expected 401"
    );
    let (status, _) = get(setup.ceiling, "/auth/verify", None)?;
    ensure!(status == 200, "the ceiling server answered {status}");
    println!("  checked:   login 200 + cookie; verify 200 with it, 401 with a forged one\n");

    let bench = Bench {
        args,
        wrk,
        hz,
        ceiling: setup.ceiling,
        tessera: setup.tessera,
        cookie_header,
        login_body,
        login_connections,
    };
    let results = scenarios(&bench, &setup.hasher, &setup.password);

    stop.store(true, Ordering::SeqCst);
    let _ = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async {
            for task in setup.servers {
                let _ = task.await;
            }
        })
        .await
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let results = results?;
    print_results(&bench, &results);
    // Wrong answers (or none) make the numbers meaningless: fail, so scripts notice.
    ensure!(
        results.problems.is_empty(),
        "the load test saw {} problem(s), listed above",
        results.problems.len()
    );
    Ok(())
}

/// The pool's queue in front of the hashing slots, as `tessera serve` sets it.
const QUEUE: usize = 64;

struct Setup {
    ceiling: SocketAddr,
    tessera: SocketAddr,
    password: String,
    hasher: Hasher,
    hash_concurrency: usize,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts both servers on loopback and creates the user.
async fn setup(
    dir: &std::path::Path,
    hash_concurrency: Option<usize>,
    stop: Arc<AtomicBool>,
) -> Result<Setup> {
    let stopped = move || {
        let stop = stop.clone();
        async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // The ceiling: a bare handler, served the way axum serves everything.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the ceiling server")?;
    let ceiling = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/auth/verify",
        axum::routing::get(|| async { axum::http::StatusCode::OK }),
    );
    let ceiling_task = tokio::spawn({
        let stopped = stopped.clone();
        async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped())
                .await
            {
                eprintln!("tessera bench: ceiling server: {e}");
            }
        }
    });

    // tessera: a real AppState over a temporary SQLite store, as `tessera serve` builds it,
    // except for a login throttle raised out of the way (one client address, one account).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the tessera server")?;
    let tessera = listener.local_addr()?;
    let mut config = ServerConfig::dev(tessera);
    if let Some(n) = hash_concurrency {
        config.hash_concurrency = n;
    }
    config.throttle = ThrottleConfig {
        per_ip_per_minute: 10_000_000,
        per_ip_burst: 10_000_000,
        per_account_per_minute: 10_000_000,
        per_account_burst: 10_000_000,
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let hasher = Hasher::new(HashParams::default()).context("password hashing parameters")?;
    let store: Arc<dyn tessera_domain::store::Store> = Arc::new(
        tessera_store_sqlite::SqliteStore::open(&dir.join("tessera.db"))
            .await
            .context("opening the temporary SQLite store")?,
    );
    let passwords = BlockingPasswords::new(hasher.clone(), config.hash_concurrency, QUEUE)
        .context("starting the password-hashing threads")?;
    let password = tessera_token::b64::encode(tessera_domain::random::bytes::<18>());
    let new = NewAccount {
        username: Username::parse(USERNAME)?,
        email: None,
        groups: Vec::new(),
        role: Role::User,
    };
    let actor = Actor {
        ip: None,
        label: "bench".into(),
    };
    accounts::create(
        store.as_ref(),
        &passwords,
        &config.passwords,
        new,
        Some(Password::new(password.clone())),
        &actor,
        SystemClock.now(),
    )
    .await
    .context("creating the benchmark user")?;
    let hash_concurrency = config.hash_concurrency;
    let state = AppState::new(config, store, Arc::new(SystemClock), passwords)
        .await
        .context("initialising server state")?;
    let tessera_task = tokio::spawn(async move {
        if let Err(e) = tessera_server::serve(listener, state, stopped()).await {
            eprintln!("tessera bench: tessera server: {e}");
        }
    });
    Ok(Setup {
        ceiling,
        tessera,
        password,
        hasher,
        hash_concurrency,
        servers: vec![ceiling_task, tessera_task],
    })
}

/// Everything measured, for the table and the verdicts.
#[derive(Default)]
struct Results {
    ceiling: Option<Row>,
    valid: Option<Row>,
    forged: Option<Row>,
    hash: Option<Row>,
    login: Option<Row>,
    flood_verify: Option<Row>,
    flood_login: Option<Row>,
    /// Per-round ratios, shown under the table.
    rounds: Vec<String>,
    problems: Vec<String>,
}

fn scenarios(b: &Bench, hasher: &Hasher, password: &str) -> Result<Results> {
    let mut out = Results::default();
    let cookie = b.cookie_header.as_str();
    let verify = "/auth/verify";
    let valid = Load::Get {
        path: verify,
        cookie: Some(cookie),
    };

    // The ceiling and the two /auth/verify loads run in interleaved rounds: machine load that
    // drifts over a minute then affects all three alike, and the table shows per-metric
    // medians over the rounds.
    let mut ceilings = Vec::new();
    let mut valids = Vec::new();
    let mut forgeds = Vec::new();
    for round in 1..=b.args.rounds.max(1) {
        let of = format!("round {round}/{}", b.args.rounds.max(1));
        if b.wants(Scenario::Ceiling) {
            // The same request bytes as the valid-cookie load, to a handler that ignores them.
            progress(&format!("ceiling: bare axum handler ({of})"));
            b.warm("ceiling", &valid, b.ceiling)?;
            let (r, u) = b.http("ceiling", &valid, b.ceiling, b.args.connections)?;
            check(&mut out.problems, "ceiling", &r, Expect::AllOk);
            ceilings.push(Row::http("ceiling: bare axum 200", &r, false, &u));
        }
        if b.wants(Scenario::Valid) {
            progress(&format!("GET /auth/verify, valid cookie ({of})"));
            b.warm("valid", &valid, b.tessera)?;
            let (r, u) = b.http("valid", &valid, b.tessera, b.args.connections)?;
            check(&mut out.problems, "valid cookie", &r, Expect::AllOk);
            valids.push(Row::http("verify, valid cookie", &r, false, &u));
        }
        if b.wants(Scenario::Forged) {
            progress(&format!("GET /auth/verify, forged cookies ({of})"));
            let forged = Load::Forged {
                path: verify,
                cookie_name: "tessera",
            };
            b.warm("forged", &forged, b.tessera)?;
            let (r, u) = b.http("forged", &forged, b.tessera, b.args.connections)?;
            check(&mut out.problems, "forged cookies", &r, Expect::AllRefused);
            let mut row = Row::http("verify, forged cookies (401)", &r, false, &u);
            row.note = "a new random cookie per request".into();
            forgeds.push(row);
        }
    }
    for (name, rows) in [("valid", &valids), ("forged", &forgeds)] {
        if rows.len() > 1 && rows.len() == ceilings.len() {
            let per_round: Vec<String> = rows
                .iter()
                .zip(&ceilings)
                .map(|(r, c)| format!("{:.2}x", r.rate / c.rate.max(1e-9)))
                .collect();
            out.rounds.push(format!(
                "{name} / ceiling req/s by round: {}",
                per_round.join(" ")
            ));
        }
    }
    out.ceiling = Row::median(&ceilings);
    out.valid = Row::median(&valids);
    out.forged = Row::median(&forgeds);
    if b.wants(Scenario::Hash) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        progress(&format!(
            "raw argon2id: Hasher::verify on {threads} thread(s)"
        ));
        out.hash = Some(raw_hash(hasher, password, threads, b.args.seconds, b.hz)?);
    }
    let login = Load::PostJson {
        path: "/login",
        body: &b.login_body,
    };
    if b.wants(Scenario::Login) {
        progress("POST /login, right password");
        let (r, u) = b.http("login", &login, b.tessera, b.login_connections)?;
        check(&mut out.problems, "login", &r, Expect::AllOk);
        let mut row = Row::http("login: POST /login", &r, true, &u);
        row.note = format!("{} connections", b.login_connections);
        out.login = Some(row);
    }
    if b.wants(Scenario::Flood) {
        progress("GET /auth/verify during a login flood");
        let before = cpu::snapshot()?;
        let logins = b.wrk.start(
            "flood-login",
            &login,
            b.tessera,
            b.args.threads,
            b.login_connections,
            b.args.seconds,
        )?;
        let verifies = b.wrk.start(
            "flood-verify",
            &valid,
            b.tessera,
            b.args.threads,
            b.args.connections,
            b.args.seconds,
        )?;
        let rv = verifies.finish()?;
        let rl = logins.finish()?;
        let after = cpu::snapshot()?;
        let u = cpu::usage(&before, &after, b.hz);
        check(&mut out.problems, "verify during flood", &rv, Expect::AllOk);
        check(&mut out.problems, "login during flood", &rl, Expect::AllOk);
        let mut row = Row::http("verify during login flood", &rv, false, &u);
        // Both loads share the CPU counters: show the total per verify+login, not a split.
        row.server_us = None;
        row.client_us = None;
        row.note = format!("server {:.2} cores in all", u.server / u.wall.max(1e-9));
        out.flood_verify = Some(row);
        let mut row = Row::http("login during the flood", &rl, true, &u);
        row.server_us = None;
        row.client_us = None;
        out.flood_login = Some(row);
    }
    Ok(out)
}

fn progress(what: &str) {
    eprintln!("  running:   {what} …");
}

enum Expect {
    AllOk,
    AllRefused,
}

fn check(problems: &mut Vec<String>, name: &str, r: &Report, expect: Expect) {
    if r.requests == 0 {
        problems.push(format!("{name}: no request completed"));
        return;
    }
    match expect {
        Expect::AllOk if r.status_errors > 0 => problems.push(format!(
            "{name}: {} of {} responses had a status >= 400",
            r.status_errors, r.requests
        )),
        Expect::AllRefused if r.status_errors != r.requests => problems.push(format!(
            "{name}: {} of {} responses were not refused",
            r.requests - r.status_errors,
            r.requests
        )),
        _ => {}
    }
    if r.socket_errors > 0 {
        problems.push(format!(
            "{name}: {} socket errors or timeouts",
            r.socket_errors
        ));
    }
}

/// argon2id with the default (OWASP) parameters on `threads` threads: `Hasher::verify`, the
/// operation a login performs.
fn raw_hash(hasher: &Hasher, password: &str, threads: usize, seconds: u64, hz: f64) -> Result<Row> {
    let password = Password::new(password.to_owned());
    let stored = hasher.hash(&password).context("hashing")?;
    ensure!(
        hasher.verify(&password, Some(&stored)),
        "Hasher::verify refused its own hash"
    );
    let before = cpu::snapshot()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut own = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let _ = hasher.verify(&password, Some(&stored));
                        own.push(t.elapsed());
                    }
                    own
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let u = cpu::usage(&before, &cpu::snapshot()?, hz);
    if latencies.is_empty() {
        bail!("no hash completed");
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    };
    let n = latencies.len() as f64;
    Ok(Row {
        name: format!("argon2id raw, {threads} thread(s)"),
        rate: n / wall,
        p50_ms: Some(pct(0.50)),
        p99_ms: Some(pct(0.99)),
        server_us: Some(u.server / n * 1e6),
        client_us: None,
        other_cores: u.other_cores(),
        note: "Hasher::verify, m=19 MiB t=2 p=1".into(),
    })
}

fn print_results(b: &Bench, r: &Results) {
    let ceiling = r.ceiling.as_ref();
    let ratio = |row: &Row| ceiling.filter(|c| c.rate > 0.0).map(|c| row.rate / c.rate);
    let cpu_ratio = |row: &Row| match (ceiling.and_then(|c| c.server_us), row.server_us) {
        (Some(c), Some(v)) if c > 0.0 => Some(v / c),
        _ => None,
    };
    let vs_ceiling = |row: &Row| {
        let rps = ratio(row).map_or("-".into(), |x| format!("{x:.2}x"));
        match cpu_ratio(row) {
            Some(c) => format!("{rps}, CPU {c:.2}x"),
            None => rps,
        }
    };
    let vs_raw = |row: &Row| match &r.hash {
        Some(h) if h.rate > 0.0 => format!("{:.2}x raw", row.rate / h.rate),
        _ => "-".into(),
    };
    let mut rows: Vec<(&Row, String)> = Vec::new();
    if let Some(c) = &r.ceiling {
        rows.push((c, "1.00x".into()));
    }
    for row in [&r.valid, &r.forged, &r.flood_verify].into_iter().flatten() {
        rows.push((row, vs_ceiling(row)));
    }
    if let Some(h) = &r.hash {
        rows.push((h, "1.00x raw".into()));
    }
    for row in [&r.login, &r.flood_login].into_iter().flatten() {
        rows.push((row, vs_raw(row)));
    }

    let table = Table::new(&rows);
    println!("{}", table.plain());

    println!("Targets:");
    let mut verdicts = Vec::new();
    let mut verdict = |ok: Option<bool>, what: String| {
        let tag = match ok {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        verdicts.push(format!("{tag}  {what}"));
    };
    if let Some(v) = &r.valid {
        let x = ratio(v);
        verdict(
            x.map(|x| x >= 0.9),
            format!("valid cookie req/s >= 0.9x ceiling: {}", fmt_x(x)),
        );
        let c = cpu_ratio(v);
        verdict(
            c.map(|c| c <= 1.3),
            format!("valid cookie CPU/request <= 1.3x ceiling: {}", fmt_x(c)),
        );
        let p99 = v.p99_ms.unwrap_or(f64::INFINITY);
        verdict(
            Some(p99 < 2.0),
            format!("valid cookie p99 < 2 ms: {p99:.2} ms"),
        );
    }
    if let Some(f) = &r.forged {
        let x = ratio(f);
        verdict(
            x.map(|x| x >= 0.8),
            format!("forged cookie req/s >= 0.8x ceiling: {}", fmt_x(x)),
        );
    }
    if let Some(l) = &r.login {
        let x = r
            .hash
            .as_ref()
            .filter(|h| h.rate > 0.0)
            .map(|h| l.rate / h.rate);
        verdict(
            x.map(|x| x >= 0.9),
            format!(
                "login/s >= 90% of raw argon2id hashes/s: {:.1}/s vs {}/s = {}",
                l.rate,
                r.hash
                    .as_ref()
                    .map_or("-".into(), |h| format!("{:.1}", h.rate)),
                x.map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
            ),
        );
    }
    if let Some(f) = &r.flood_verify {
        let p99 = f.p99_ms.unwrap_or(f64::INFINITY);
        verdict(
            Some(p99 < 5.0),
            format!("/auth/verify p99 < 5 ms during a login flood: {p99:.2} ms"),
        );
    }
    for v in &verdicts {
        println!("  {v}");
    }
    for line in &r.rounds {
        println!("  ({line})");
    }
    if !r.problems.is_empty() {
        println!("Problems (the numbers above may not mean what they say):");
        for p in &r.problems {
            println!("  - {p}");
        }
    }
    let busiest = rows
        .iter()
        .map(|(row, _)| row.other_cores)
        .fold(0.0, f64::max);
    println!(
        "Other load: at most {busiest:.2} core(s) used by other processes during a scenario; loadavg now {}.",
        cpu::loadavg()
    );
    if b.args.markdown {
        println!("\n{}", table.markdown());
        for v in &verdicts {
            println!("- {v}");
        }
    }
}

fn fmt_x(x: Option<f64>) -> String {
    x.map_or("- (no ceiling measured)".into(), |x| format!("{x:.2}x"))
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(rows: &[(&Row, String)]) -> Table {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        let us = |v: Option<f64>| {
            v.map_or("-".into(), |v| {
                if v >= 1000.0 {
                    format!("{:.1} ms", v / 1000.0)
                } else {
                    format!("{v:.1}")
                }
            })
        };
        Table {
            header: [
                "scenario",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU µs/req",
                "wrk CPU µs/req",
                "vs ceiling / raw",
                "other load",
                "note",
            ]
            .map(String::from)
            .to_vec(),
            rows: rows
                .iter()
                .map(|(row, vs)| {
                    vec![
                        row.name.clone(),
                        format!("{:.0}", row.rate),
                        ms(row.p50_ms),
                        ms(row.p99_ms),
                        us(row.server_us),
                        us(row.client_us),
                        vs.clone(),
                        format!("{:.2} cores", row.other_cores),
                        row.note.clone(),
                    ]
                })
                .collect(),
        }
    }

    fn widths(&self) -> Vec<usize> {
        (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn plain(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = w[i].saturating_sub(c.chars().count());
                    if i == 0 || i + 1 == cells.len() {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = line(&self.header);
        for r in &self.rows {
            out.push('\n');
            out.push_str(&line(r));
        }
        out.push('\n');
        out
    }

    fn markdown(&self) -> String {
        let row = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = row(&self.header);
        out.push('\n');
        out.push_str(&format!(
            "|{}|",
            self.header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 || i + 1 == self.header.len() {
                    "---"
                } else {
                    "---:"
                })
                .collect::<Vec<_>>()
                .join("|")
        ));
        for r in &self.rows {
            out.push('\n');
            out.push_str(&row(r));
        }
        out
    }
}

/// `POST /login` (JSON) over one connection; returns the session cookie's value.
fn login(addr: SocketAddr, body: &str) -> Result<String> {
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, head) = exchange(addr, &request)?;
    if status != 200 {
        bail!("POST /login answered {status}, expected 200");
    }
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            v.trim()
                .strip_prefix("tessera=")
                .and_then(|v| v.split(';').next())
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty())
        .context("POST /login set no `tessera` session cookie")
}

/// `GET path`, with an optional `Cookie` header; returns the status and the response head.
fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Result<(u16, String)> {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"),
    )
}

/// One request on a fresh connection that the server closes after answering.
fn exchange(addr: SocketAddr, request: &str) -> Result<(u16, String)> {
    exchange_full(addr, request).map(|(status, head, _)| (status, head))
}

/// As [`exchange`], with the response body too.
fn exchange_full(addr: SocketAddr, request: &str) -> Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the response")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP response")?;
    Ok((status, head.to_owned(), body.to_owned()))
}

/// Formats server logs into a sink, so that `--server-log info` costs what production logging
/// costs to produce, without a terminal in the way.
fn init_logging(level: &str) -> Result<()> {
    if level == "off" {
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_new(level).context("--server-log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::sink)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

/// A private temporary directory for the database and the wrk scripts, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let name = format!(
            "tessera-bench-{}-{}",
            std::process::id(),
            tessera_token::b64::encode(tessera_domain::random::bytes::<6>())
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
