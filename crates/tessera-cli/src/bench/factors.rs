//! `tessera bench factors`: what a second factor costs the server (issue 9, "Benchmark (not a
//! test)"). Two parts, in one process and one run, so that every ratio compares numbers taken
//! on the same machine at the same time:
//!
//! 1. **Per check, through the domain, with a real store** (a temporary SQLite file; also
//!    PostgreSQL with `--database-url`): one TOTP verification (`factors::verify`: load the
//!    factor, open its sealed seed, RFC 6238 check, compare-and-set of the step with its audit
//!    event), one sent-code check (the code issued outside the timing), one recovery-code use,
//!    next to one password check (`Hasher::verify`, argon2id at the default cost) and the raw
//!    TOTP check without a store (`tessera_token::otp::Totp::check`). The factor services take
//!    the time as a parameter: each iteration moves it 60 s on, so one factor gives a fresh
//!    TOTP step, and a fresh sent code under the resend throttle, every time. The operations
//!    run in interleaved rounds; the table shows medians over all calls.
//! 2. **Sign-ins per second over HTTP** against an in-process server (SQLite, default argon2id
//!    cost, the login throttle raised out of the way): `POST /login` alone, and `POST /login`
//!    then `POST /login/second-factor` with a TOTP code computed by the client, in alternating
//!    rounds, by `--users` client threads. Every TOTP sign-in takes an account of a pool (its
//!    own factor), and a step after the last one it used, so replay refusal never interferes;
//!    the pool is sized from the password-only rate of the first round.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tessera_domain::account::{Account, Email, NewAccount, Role, Username};
use tessera_domain::accounts::Actor;
use tessera_domain::clock::Clock;
use tessera_domain::credential::password::{HashParams, Hasher, Password, PasswordHash};
use tessera_domain::factor::{FactorId, FactorKeys, FactorKind, FactorPolicy, ResendThrottle};
use tessera_domain::factors::{self, Destination, FactorContext, Proof};
use tessera_domain::store::Store;
use tessera_server::config::ThrottleConfig;
use tessera_server::{AppState, BlockingPasswords, SecondFactors, ServerConfig};
use tessera_token::otp::{OtpParams, Totp};
use tessera_token::seal::{KeyRing, MasterKey};
use zeroize::Zeroizing;

use super::{TempDir, cpu, progress};
use crate::serve::{SystemClock, runtime};

/// `tessera bench factors` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct FactorsArgs {
    /// Interleaved rounds of the per-check measurements.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Calls of each store-backed check per round.
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// Password checks (argon2id) per round.
    #[arg(long, default_value_t = 20)]
    password_iterations: u32,
    /// Also measure the checks on this PostgreSQL database (a `postgres://` URL; use a fresh
    /// schema, e.g. `?options[search_path]=bench_factors`).
    #[arg(long)]
    database_url: Option<String>,
    /// Seconds per HTTP sign-in round (0: skip the HTTP part).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// HTTP rounds (each: password alone, then password + TOTP).
    #[arg(long, default_value_t = 2)]
    http_rounds: u32,
    /// Concurrent HTTP clients (threads), each signing in back to back.
    #[arg(long, default_value_t = 8)]
    users: u32,
    /// Also print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// The resend throttle of the measurement: one code per iteration (the clock moves 60 s).
const BENCH_RESEND: ResendThrottle = ResendThrottle {
    min_interval: 30,
    per_hour: 100,
};

pub(crate) fn run(args: FactorsArgs) -> Result<()> {
    ensure!(
        args.rounds >= 1 && args.iterations >= 1 && args.password_iterations >= 1,
        "--rounds, --iterations and --password-iterations must be at least 1"
    );
    ensure!(args.users >= 1, "--users must be at least 1");
    let dir = TempDir::new()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hz = cpu::ticks_per_second();
    let quiet = cpu::snapshot()?;
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu::usage(&quiet, &cpu::snapshot()?, hz);
    let params = HashParams::default();
    println!("tessera bench factors");
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
    println!(
        "  password:  argon2id {params:?} (the server default); {} round(s) × {} checks, {} password checks per round",
        args.rounds, args.iterations, args.password_iterations
    );
    let hasher = Hasher::new(params).context("password hashing parameters")?;
    let rt = runtime()?;

    let mut tables = Vec::new();
    let sqlite: Arc<dyn Store> = Arc::new(rt.block_on(async {
        tessera_store_sqlite::SqliteStore::open(&dir.0.join("checks.db"))
            .await
            .context("opening the temporary SQLite store")
    })?);
    tables.push(rt.block_on(checks("SQLite", sqlite, &hasher, &args))?);
    if let Some(url) = &args.database_url {
        let pg: Arc<dyn Store> = Arc::new(rt.block_on(async {
            tessera_store_postgres::PgStore::connect(url)
                .await
                .context("connecting to PostgreSQL (--database-url)")
        })?);
        tables.push(rt.block_on(checks("PostgreSQL", pg, &hasher, &args))?);
    }
    for t in &tables {
        print_checks(t, args.markdown);
    }

    if args.seconds > 0 {
        let http = http_part(&rt, &dir.0, &hasher, &args)?;
        print_http(&http, args.markdown);
        ensure!(
            http.problems.is_empty(),
            "the HTTP sign-ins saw {} problem(s), listed above",
            http.problems.len()
        );
    }
    println!("loadavg at the end: {}", cpu::loadavg());
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// One operation's per-call times.
struct Samples {
    name: &'static str,
    note: &'static str,
    times: Vec<Duration>,
    /// CPU of the whole process (every thread, the store's included) per call, in ns.
    cpu: Vec<u64>,
}

impl Samples {
    fn new(name: &'static str, note: &'static str) -> Samples {
        Samples {
            name,
            note,
            times: Vec::new(),
            cpu: Vec::new(),
        }
    }

    /// Median CPU per call in µs, less the cost of reading the counters; NaN if not measured.
    fn cpu_median(&self, overhead_ns: u64) -> f64 {
        let mut v = self.cpu.clone();
        if v.is_empty() || v.iter().all(|&c| c == 0) {
            return f64::NAN;
        }
        v.sort_unstable();
        v[v.len() / 2].saturating_sub(overhead_ns) as f64 / 1000.0
    }

    fn quantile(&self, q: f64) -> f64 {
        let mut v: Vec<f64> = self.times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    fn mean(&self) -> f64 {
        let n = self.times.len().max(1) as f64;
        self.times
            .iter()
            .map(|d| d.as_secs_f64() * 1e6)
            .sum::<f64>()
            / n
    }
}

struct ChecksTable {
    store: &'static str,
    rows: Vec<Samples>,
    /// Median CPU of one empty pair of [`cpu_ns`] reads, subtracted from every call.
    overhead_ns: u64,
}

/// CPU time of this process so far, in ns: the sum of every thread's time on a CPU
/// (`/proc/self/task/*/schedstat`, first field), precise where `/proc/self/stat` counts ticks.
/// 0 where unreadable (the CPU columns then show NaN).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The median CPU cost of reading [`cpu_ns`] twice, back to back.
fn cpu_overhead() -> u64 {
    let mut v: Vec<u64> = (0..200)
        .map(|_| {
            let c = cpu_ns();
            cpu_ns().saturating_sub(c)
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn bench_account(name: &str) -> Result<NewAccount> {
    Ok(NewAccount {
        username: Username::parse(name)?,
        email: None,
        groups: Vec::new(),
        role: Role::User,
    })
}

fn actor() -> Actor {
    Actor {
        ip: Some("127.0.0.1".into()),
        label: "bench".into(),
    }
}

fn master_ring() -> Result<Arc<KeyRing>> {
    let (key, _text) = MasterKey::generate().map_err(|e| anyhow::anyhow!("master key: {e}"))?;
    Ok(Arc::new(KeyRing::new(key, Vec::new())))
}

/// Part 1 on one store: TOTP, sent code, recovery code, password, raw TOTP, interleaved.
async fn checks(
    label: &'static str,
    store: Arc<dyn Store>,
    hasher: &Hasher,
    args: &FactorsArgs,
) -> Result<ChecksTable> {
    progress(&format!("per-check costs on {label}"));
    let store = store.as_ref();
    let keys = FactorKeys::load(store, Some(master_ring()?))
        .await
        .context("factor keys")?;
    let policy = FactorPolicy {
        resend: BENCH_RESEND,
        ..FactorPolicy::default()
    };
    let actor = actor();
    let password = Password::new(tessera_token::b64::encode(tessera_domain::random::bytes::<
        18,
    >()));
    let stored: PasswordHash = hasher.hash(&password).context("hashing")?;
    // A fresh name per run: a PostgreSQL schema may be reused.
    let name = format!(
        "bench-{}",
        tessera_token::b64::encode(tessera_domain::random::bytes::<6>())
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let mut now = SystemClock.now();
    let account = store
        .create_account(
            &bench_account(&name)?,
            &tessera_domain::account::AccountId::generate(),
            Some(&stored),
            now,
        )
        .await
        .context("creating the bench account")?;
    let ctx = |now| FactorContext {
        store,
        keys: &keys,
        policy,
        now,
    };

    // TOTP: enrol and confirm (one step back, as an app a little behind would).
    let enrolment = factors::begin_totp(
        &ctx(now),
        &account,
        "bench app",
        "tessera-bench",
        OtpParams::DEFAULT,
        &actor,
    )
    .await?;
    let totp_id = enrolment.factor.id.clone();
    let totp = Totp::new(
        enrolment.uri.secret.clone(),
        OtpParams::DEFAULT,
        Totp::DEFAULT_PERIOD,
    )?;
    let first = totp.code_at(now.0)?;
    ensure!(
        factors::confirm_totp(&ctx(now), &account.id, &totp_id, &first, &actor)
            .await?
            .is_ok(),
        "the TOTP enrolment refused its first code"
    );

    // Email: enrol, confirm with a sent code.
    let email = factors::enrol_destination(
        &ctx(now),
        &account.id,
        "bench mail",
        Destination::Email(Email::parse("bench@example.com")?),
        &actor,
    )
    .await?;
    now = now.plus(60);
    let code = issue(&ctx(now), &account, &email.id, &actor).await?;
    ensure!(
        factors::confirm_destination(&ctx(now), &account.id, &email.id, &code, &actor)
            .await?
            .is_ok(),
        "the email enrolment refused its sent code"
    );

    let mut recovery: Vec<Zeroizing<String>> = Vec::new();
    let mut s_totp = Samples::new(
        "TOTP check",
        "factors::verify: load, open seed, RFC 6238 check, CAS step + audit",
    );
    let mut s_sent = Samples::new(
        "sent-code check",
        "factors::verify: live code, reserve a try, keyed hash, CAS use + audit",
    );
    let mut s_issue = Samples::new(
        "sent-code issue",
        "factors::issue_code: throttle, keyed hash, insert + audit (not sent)",
    );
    let mut s_rec = Samples::new(
        "recovery-code use",
        "factors::verify: keyed hash, CAS mark used + audit",
    );
    let mut s_pwd = Samples::new(
        "password check",
        "Hasher::verify, argon2id default cost (baseline)",
    );
    let mut s_raw = Samples::new(
        "raw TOTP check, no store",
        "tessera_token::otp::Totp::check, window 1 (batches of 1000)",
    );
    let expect = |what: &str, got: Result<FactorKind, factors::FactorDenial>, kind| -> Result<()> {
        match got {
            Ok(k) if k == kind => Ok(()),
            other => bail!("{what} refused in the benchmark: {other:?}"),
        }
    };

    for _round in 0..args.rounds {
        for _ in 0..args.iterations {
            now = now.plus(60);
            let code = totp.code_at(now.0)?;
            let proof = Proof::Code {
                factor: totp_id.clone(),
                code: Zeroizing::new(code),
            };
            let c = cpu_ns();
            let t = Instant::now();
            let got = factors::verify(&ctx(now), &account.id, &proof, &actor).await?;
            s_totp.times.push(t.elapsed());
            s_totp.cpu.push(cpu_ns().saturating_sub(c));
            expect("a TOTP code", got, FactorKind::Totp)?;
        }
        for _ in 0..args.iterations {
            now = now.plus(60);
            let c = cpu_ns();
            let t = Instant::now();
            let code = issue(&ctx(now), &account, &email.id, &actor).await?;
            s_issue.times.push(t.elapsed());
            s_issue.cpu.push(cpu_ns().saturating_sub(c));
            let proof = Proof::Code {
                factor: email.id.clone(),
                code,
            };
            let c = cpu_ns();
            let t = Instant::now();
            let got = factors::verify(&ctx(now), &account.id, &proof, &actor).await?;
            s_sent.times.push(t.elapsed());
            s_sent.cpu.push(cpu_ns().saturating_sub(c));
            expect("a sent code", got, FactorKind::Email)?;
        }
        for _ in 0..args.iterations {
            now = now.plus(60);
            if recovery.is_empty() {
                recovery = factors::generate_recovery_codes(&ctx(now), &account.id, &actor)
                    .await?
                    .0;
            }
            let Some(code) = recovery.pop() else {
                bail!("no recovery code generated");
            };
            let proof = Proof::Recovery { code };
            let c = cpu_ns();
            let t = Instant::now();
            let got = factors::verify(&ctx(now), &account.id, &proof, &actor).await?;
            s_rec.times.push(t.elapsed());
            s_rec.cpu.push(cpu_ns().saturating_sub(c));
            expect("a recovery code", got, FactorKind::Recovery)?;
        }
        for _ in 0..args.password_iterations {
            let c = cpu_ns();
            let t = Instant::now();
            let ok = hasher.verify(&password, Some(&stored));
            s_pwd.times.push(t.elapsed());
            s_pwd.cpu.push(cpu_ns().saturating_sub(c));
            ensure!(ok, "Hasher::verify refused its own hash");
        }
        for _ in 0..args.iterations.div_ceil(10) {
            let at = now.0;
            let code = totp.code_at(at)?;
            let t = Instant::now();
            let mut ok = 0u32;
            for _ in 0..1000 {
                ok += u32::from(totp.check(&code, at, 1, None).is_ok());
            }
            s_raw.times.push(t.elapsed() / 1000);
            ensure!(ok == 1000, "Totp::check refused a valid code");
        }
    }
    Ok(ChecksTable {
        store: label,
        rows: vec![s_totp, s_sent, s_rec, s_issue, s_raw, s_pwd],
        overhead_ns: cpu_overhead(),
    })
}

/// Issues a sent code (never delivered) and returns it.
async fn issue(
    ctx: &FactorContext<'_>,
    account: &Account,
    factor: &FactorId,
    actor: &Actor,
) -> Result<Zeroizing<String>> {
    match factors::issue_code(ctx, &account.id, factor, actor).await? {
        Ok(issued) => Ok(issued.code),
        Err(refused) => bail!("issuing a code was refused: {refused:?}"),
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 10.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.2} µs")
    }
}

fn print_checks(t: &ChecksTable, markdown: bool) {
    let pwd = t
        .rows
        .iter()
        .find(|r| r.name == "password check")
        .map_or(f64::NAN, |r| r.quantile(0.5));
    let pwd_cpu = t
        .rows
        .iter()
        .find(|r| r.name == "password check")
        .map_or(f64::NAN, |r| r.cpu_median(t.overhead_ns));
    let header = [
        "operation",
        "calls",
        "median",
        "mean",
        "p90",
        "p99",
        "vs password (median)",
        "CPU median",
        "CPU vs password",
        "what",
    ];
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let med = r.quantile(0.5);
            vec![
                r.name.to_owned(),
                r.times.len().to_string(),
                fmt_us(med),
                fmt_us(r.mean()),
                fmt_us(r.quantile(0.9)),
                fmt_us(r.quantile(0.99)),
                if r.name == "password check" {
                    "100 % (baseline)".into()
                } else {
                    format!("{:.3} % (1/{:.0})", 100.0 * med / pwd, pwd / med)
                },
                fmt_cpu(r.cpu_median(t.overhead_ns)),
                {
                    let c = r.cpu_median(t.overhead_ns);
                    if c.is_nan() {
                        "-".to_owned()
                    } else if r.name == "password check" {
                        "100 %".to_owned()
                    } else {
                        format!("{:.2} % (1/{:.0})", 100.0 * c / pwd_cpu, pwd_cpu / c)
                    }
                },
                r.note.to_owned(),
            ]
        })
        .collect();
    println!(
        "\nPer check, {} store (wall time per call; CPU of the whole process per call, less {} ns of measuring):",
        t.store, t.overhead_ns
    );
    print_table(&header, &rows, markdown);
}

fn fmt_cpu(us: f64) -> String {
    if us.is_nan() { "-".into() } else { fmt_us(us) }
}

fn print_table(header: &[&str], rows: &[Vec<String>], markdown: bool) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
                if i == 0 || i + 1 == cells.len() {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.iter().map(|h| (*h).to_owned()).collect()));
    for r in rows {
        println!("{}", line(r.clone()));
    }
    if markdown {
        println!("\n| {} |", header.join(" | "));
        println!(
            "|{}|",
            (0..header.len())
                .map(|i| if i == 0 || i + 1 == header.len() {
                    "---"
                } else {
                    "---:"
                })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in rows {
            println!("| {} |", r.join(" | "));
        }
        println!();
    }
}

// ---------------------------------------------------------------------------------------
// Part 2: sign-ins per second over HTTP.

/// One HTTP round's outcome.
struct Round {
    flow: &'static str,
    signins: u64,
    wall: f64,
    latencies: Vec<Duration>,
    server_cpu_us: f64,
    other_cores: f64,
    stalls: u64,
}

struct HttpResults {
    rounds: Vec<Round>,
    pool: usize,
    problems: Vec<String>,
}

/// An account of the TOTP pool: its factor and the last step it used.
struct PoolAccount {
    username: String,
    factor: FactorId,
    totp: Totp,
    last_step: u64,
}

fn http_part(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    hasher: &Hasher,
    args: &FactorsArgs,
) -> Result<HttpResults> {
    let hz = cpu::ticks_per_second();
    let ring = master_ring()?;
    let stop = Arc::new(AtomicBool::new(false));
    let password = tessera_token::b64::encode(tessera_domain::random::bytes::<18>());
    let stored = hasher
        .hash(&Password::new(password.clone()))
        .context("hashing")?;
    let (addr, store, keys, server) = rt.block_on(start_server(dir, ring, stop.clone()))?;
    println!(
        "\n  server:    http://{addr} (SQLite in {}), master key set, hash_concurrency as `serve`",
        dir.display()
    );

    // Password-only accounts: one per client (all with the same stored hash: one argon2id).
    let plain: Vec<String> = (0..args.users).map(|i| format!("plain-{i}")).collect();
    rt.block_on(async {
        for name in &plain {
            store
                .create_account(
                    &bench_account(name)?,
                    &tessera_domain::account::AccountId::generate(),
                    Some(&stored),
                    SystemClock.now(),
                )
                .await?;
        }
        anyhow::Ok(())
    })?;

    let mut out = HttpResults {
        rounds: Vec::new(),
        pool: 0,
        problems: Vec::new(),
    };
    let pool: Arc<Mutex<std::collections::VecDeque<PoolAccount>>> = Arc::default();
    for round in 0..args.http_rounds.max(1) {
        progress(&format!(
            "HTTP round {}/{}: POST /login, password alone",
            round + 1,
            args.http_rounds.max(1)
        ));
        let r = drive(addr, args, hz, "password alone", &mut out.problems, |i| {
            Box::new(PlainUser {
                body: login_body(&plain[i as usize % plain.len()], &password),
            })
        })?;
        // Size (or grow) the TOTP pool from the measured rate: each account gives two
        // sign-ins at once (steps now and now+1), then one per 30 s.
        let rate = r.signins as f64 / r.wall.max(1e-9);
        let rounds_left = f64::from(args.http_rounds.max(1) - round);
        let want = (1.5 * rate * args.seconds as f64 * rounds_left / 2.0).ceil() as usize
            + 2 * args.users as usize;
        out.rounds.push(r);
        let have = pool.lock().map_or(0, |p| p.len());
        if want > have {
            progress(&format!(
                "enrolling TOTP for {} more account(s)",
                want - have
            ));
            let more = rt.block_on(make_pool(store.as_ref(), &keys, &stored, have, want - have))?;
            if let Ok(mut p) = pool.lock() {
                p.extend(more);
                out.pool = p.len();
            }
        }
        progress(&format!(
            "HTTP round {}/{}: POST /login + POST /login/second-factor (TOTP)",
            round + 1,
            args.http_rounds.max(1)
        ));
        let r = drive(addr, args, hz, "password + TOTP", &mut out.problems, |_| {
            Box::new(TotpUser {
                pool: pool.clone(),
                password: password.clone(),
            })
        })?;
        out.rounds.push(r);
    }

    stop.store(true, Ordering::SeqCst);
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), server).await });
    Ok(out)
}

async fn start_server(
    dir: &std::path::Path,
    ring: Arc<KeyRing>,
    stop: Arc<AtomicBool>,
) -> Result<(
    SocketAddr,
    Arc<dyn Store>,
    FactorKeys,
    tokio::task::JoinHandle<()>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the tessera server")?;
    let addr = listener.local_addr()?;
    let mut config = ServerConfig::dev(addr);
    config.throttle = ThrottleConfig {
        per_ip_per_minute: 10_000_000,
        per_ip_burst: 10_000_000,
        per_account_per_minute: 10_000_000,
        per_account_burst: 10_000_000,
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let hasher = Hasher::new(HashParams::default()).context("password hashing parameters")?;
    let store: Arc<dyn Store> = Arc::new(
        tessera_store_sqlite::SqliteStore::open(&dir.join("http.db"))
            .await
            .context("opening the temporary SQLite store")?,
    );
    let passwords = BlockingPasswords::new(hasher, config.hash_concurrency, super::QUEUE)
        .context("starting the password-hashing threads")?;
    // The same keys the server derives: its pepper is the store's, first writer wins.
    let keys = FactorKeys::load(store.as_ref(), Some(ring.clone())).await?;
    let state = AppState::with(
        config,
        store.clone(),
        Arc::new(SystemClock),
        passwords,
        SecondFactors {
            master_keys: Some(ring),
            senders: Default::default(),
        },
    )
    .await
    .context("initialising server state")?;
    let stopped = async move {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let task = tokio::spawn(async move {
        if let Err(e) = tessera_server::serve(listener, state, stopped).await {
            eprintln!("tessera bench: tessera server: {e}");
        }
    });
    Ok((addr, store, keys, task))
}

/// Creates `count` accounts with an active TOTP factor, confirmed one step back so that the
/// current step and the next are both still unused.
async fn make_pool(
    store: &dyn Store,
    keys: &FactorKeys,
    stored: &PasswordHash,
    first: usize,
    count: usize,
) -> Result<Vec<PoolAccount>> {
    let actor = actor();
    let now = SystemClock.now();
    let ctx = FactorContext {
        store,
        keys,
        policy: FactorPolicy::default(),
        now,
    };
    let mut out = Vec::with_capacity(count);
    for i in first..first + count {
        let username = format!("totp-{i}");
        let account = store
            .create_account(
                &bench_account(&username)?,
                &tessera_domain::account::AccountId::generate(),
                Some(stored),
                now,
            )
            .await?;
        let e = factors::begin_totp(
            &ctx,
            &account,
            "app",
            "tessera-bench",
            OtpParams::DEFAULT,
            &actor,
        )
        .await?;
        let totp = Totp::new(
            e.uri.secret.clone(),
            OtpParams::DEFAULT,
            Totp::DEFAULT_PERIOD,
        )?;
        let step = totp
            .step_at(now.0)
            .context("clock before 1970")?
            .saturating_sub(1);
        let code = totp.code_for_step(step);
        ensure!(
            factors::confirm_totp(&ctx, &account.id, &e.factor.id, &code, &actor)
                .await?
                .is_ok(),
            "the TOTP enrolment refused its first code"
        );
        out.push(PoolAccount {
            username,
            factor: e.factor.id,
            totp,
            last_step: step,
        });
    }
    Ok(out)
}

fn login_body(username: &str, password: &str) -> String {
    format!(r#"{{"username":"{username}","password":"{password}"}}"#)
}

/// What one client does for one sign-in; `Ok(false)` for a stall (no account usable now).
trait SignIn: Send {
    fn sign_in(&mut self, addr: SocketAddr) -> Result<bool>;
}

struct PlainUser {
    body: String,
}

impl SignIn for PlainUser {
    fn sign_in(&mut self, addr: SocketAddr) -> Result<bool> {
        let (status, head, body) = post(addr, "/login", None, &self.body)?;
        ensure!(
            status == 200 && cookie_value(&head, "tessera").is_some(),
            "POST /login answered {status} without a session cookie: {body}"
        );
        Ok(true)
    }
}

struct TotpUser {
    pool: Arc<Mutex<std::collections::VecDeque<PoolAccount>>>,
    password: String,
}

impl SignIn for TotpUser {
    fn sign_in(&mut self, addr: SocketAddr) -> Result<bool> {
        // The step to use: the one after the account's last, if the server will still
        // accept it (at most one step ahead of now, RFC 6238 §5.2 window 1).
        let now = SystemClock.now().0;
        let taken = {
            let mut pool = self.pool.lock().map_err(|_| anyhow::anyhow!("pool lock"))?;
            let Some(account) = pool.pop_front() else {
                bail!("the TOTP pool is empty");
            };
            let current = account.totp.step_at(now).context("clock")?;
            if account.last_step > current {
                pool.push_front(account);
                None
            } else {
                Some((account, current))
            }
        };
        let Some((mut account, current)) = taken else {
            // Every account has used the steps the server accepts now: wait for the next.
            std::thread::sleep(Duration::from_millis(100));
            return Ok(false);
        };
        let step = (account.last_step + 1).max(current);
        let result = (|| {
            let body = login_body(&account.username, &self.password);
            let (status, head, text) = post(addr, "/login", None, &body)?;
            ensure!(
                status == 200 && text.contains("second_factor_required"),
                "POST /login answered {status}, not second_factor_required: {text}"
            );
            let pending = cookie_value(&head, "tessera-mfa")
                .context("POST /login set no tessera-mfa cookie")?;
            let code = account.totp.code_for_step(step);
            let proof = format!(
                r#"{{"factor":"{}","code":"{code}"}}"#,
                account.factor.as_str()
            );
            let (status, head, text) = post(
                addr,
                "/login/second-factor",
                Some(&format!("tessera-mfa={pending}")),
                &proof,
            )?;
            ensure!(
                status == 200 && cookie_value(&head, "tessera").is_some(),
                "POST /login/second-factor answered {status} without a session cookie: {text}"
            );
            anyhow::Ok(())
        })();
        account.last_step = step;
        if let Ok(mut pool) = self.pool.lock() {
            pool.push_back(account);
        }
        result.map(|()| true)
    }
}

/// Runs `args.users` clients for `args.seconds` and measures.
fn drive(
    addr: SocketAddr,
    args: &FactorsArgs,
    hz: f64,
    flow: &'static str,
    problems: &mut Vec<String>,
    make: impl Fn(u32) -> Box<dyn SignIn>,
) -> Result<Round> {
    let before = cpu::snapshot()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let clients: Vec<Box<dyn SignIn>> = (0..args.users).map(&make).collect();
    let results: Vec<(Vec<Duration>, u64, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut stalls = 0u64;
                    let mut errors = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match client.sign_in(addr) {
                            Ok(true) => lat.push(t.elapsed()),
                            Ok(false) => stalls += 1,
                            Err(e) => {
                                if errors.len() < 3 {
                                    errors.push(format!("{e:#}"));
                                }
                            }
                        }
                    }
                    (lat, stalls, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), 0, vec!["a client panicked".into()]))
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let u = cpu::usage(&before, &cpu::snapshot()?, hz);
    let mut latencies = Vec::new();
    let mut stalls = 0;
    for (lat, st, errs) in results {
        latencies.extend(lat);
        stalls += st;
        problems.extend(errs.into_iter().map(|e| format!("{flow}: {e}")));
    }
    if stalls > 0 {
        problems.push(format!(
            "{flow}: {stalls} stall(s) waiting for a TOTP step (pool too small)"
        ));
    }
    latencies.sort();
    let signins = latencies.len() as u64;
    Ok(Round {
        flow,
        signins,
        wall,
        latencies,
        // The clients run in this process too: their CPU is counted here (small next to
        // argon2id: a few HTTP exchanges per sign-in).
        server_cpu_us: (u.server + u.client) / signins.max(1) as f64 * 1e6,
        other_cores: u.other_cores(),
        stalls,
    })
}

fn print_http(r: &HttpResults, markdown: bool) {
    let pct = |v: &[Duration], q: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
    };
    let header = [
        "round",
        "flow",
        "sign-ins",
        "sign-ins/s",
        "p50 ms",
        "p99 ms",
        "process CPU per sign-in",
        "other load",
        "vs password alone",
    ];
    let mut rows = Vec::new();
    let mut last_plain = None;
    let (mut plain_rates, mut totp_rates) = (Vec::new(), Vec::new());
    for (i, round) in r.rounds.iter().enumerate() {
        let rate = round.signins as f64 / round.wall.max(1e-9);
        let vs = if round.flow == "password alone" {
            last_plain = Some(rate);
            plain_rates.push(rate);
            "1.00x".to_owned()
        } else {
            totp_rates.push(rate);
            last_plain.map_or("-".into(), |p: f64| format!("{:.2}x", rate / p))
        };
        rows.push(vec![
            (i / 2 + 1).to_string(),
            round.flow.to_owned(),
            round.signins.to_string(),
            format!("{rate:.1}"),
            format!("{:.1}", pct(&round.latencies, 0.5)),
            format!("{:.1}", pct(&round.latencies, 0.99)),
            fmt_us(round.server_cpu_us),
            format!("{:.2} cores", round.other_cores),
            if round.stalls > 0 {
                format!("{vs} ({} stalls)", round.stalls)
            } else {
                vs
            },
        ]);
    }
    println!(
        "\nSign-ins over HTTP ({} TOTP accounts in the pool):",
        r.pool
    );
    print_table(&header, &rows, markdown);
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    if !plain_rates.is_empty() && !totp_rates.is_empty() {
        let (p, t) = (
            sum(&plain_rates) / plain_rates.len() as f64,
            sum(&totp_rates) / totp_rates.len() as f64,
        );
        println!(
            "Mean over rounds: password alone {p:.1}/s, password + TOTP {t:.1}/s = {:.2}x",
            t / p
        );
    }
    if !r.problems.is_empty() {
        println!("Problems (the numbers above may not mean what they say):");
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}

/// `POST path` with a JSON body and an optional `Cookie`; returns status, head and body.
fn post(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Result<(u16, String, String)> {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{cookie}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    super::exchange_full(addr, &request)
}

/// The value of cookie `name` set by a response head.
fn cookie_value(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            v.trim()
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .and_then(|v| v.split(';').next())
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty())
}
