//! Driving wrk: Lua scripts written to a temporary directory, one child process per load, and
//! the one-line report printed by the scripts' `done()`.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// What a load sends. Every script answers through a `request()` function, so that all
/// scenarios pay the same per-request cost in the load generator.
pub(crate) enum Load<'a> {
    /// The same GET for every request, optionally with a session cookie.
    Get {
        path: &'a str,
        cookie: Option<&'a str>,
    },
    /// GET with a different random, well-formed (`<43 base64url>.<22 base64url>`) but unsealed
    /// session cookie on each request.
    Forged { path: &'a str, cookie_name: &'a str },
    /// The same JSON POST for every request.
    PostJson { path: &'a str, body: &'a str },
}

impl Load<'_> {
    /// The request path.
    pub(crate) fn path(&self) -> &str {
        match self {
            Load::Get { path, .. } | Load::Forged { path, .. } | Load::PostJson { path, .. } => {
                path
            }
        }
    }
}

/// wrk's verdict on one load, from the `done()` line.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Report {
    pub(crate) requests: u64,
    pub(crate) duration_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    /// Responses with a status >= 400.
    pub(crate) status_errors: u64,
    /// Connect, read, write and timeout errors.
    pub(crate) socket_errors: u64,
}

impl Report {
    /// Responses with a status < 400 per second.
    pub(crate) fn ok_per_second(&self) -> f64 {
        rate(
            self.requests.saturating_sub(self.status_errors),
            self.duration_s,
        )
    }

    /// All responses per second.
    pub(crate) fn per_second(&self) -> f64 {
        rate(self.requests, self.duration_s)
    }
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// The Lua reporter shared by every script.
const DONE: &str = r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "TESSERA_BENCH requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f max_us=%.0f status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"#;

/// Forged cookies: per wrk thread, 4096 random tokens and 4096 random tags, paired so that
/// 4096² distinct cookies go by before one repeats. Token: 43 base64url characters whose last
/// one leaves the unused low bits zero (32 bytes, canonical); tag: 22 characters (16 bytes).
const FORGED: &str = r#"
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local N = 4096
local toks, tags = {}, {}
local next_id = 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local function rnd(n, last_step)
  local t = {}
  for i = 1, n - 1 do
    local k = math.random(1, 64)
    t[i] = B64:sub(k, k)
  end
  local k = math.random(0, 64 / last_step - 1) * last_step + 1
  t[n] = B64:sub(k, k)
  return table.concat(t)
end
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for i = 1, N do
    toks[i] = rnd(43, 4)
    tags[i] = rnd(22, 16)
  end
end
local i, j = 0, 0
function request()
  i = i + 1
  if i > N then
    i = 1
    j = (j + 1) % N
  end
  return PREFIX .. toks[i] .. "." .. tags[(i + j) % N + 1] .. "\r\n\r\n"
end
"#;

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Lua script for `load` against `addr`.
pub(crate) fn script(load: &Load<'_>, addr: SocketAddr) -> String {
    let host = format!("Host: {addr}\r\n");
    match load {
        Load::Get { path, cookie } => {
            let cookie = cookie
                .map(|c| format!("Cookie: {c}\r\n"))
                .unwrap_or_default();
            let req = format!("GET {path} HTTP/1.1\r\n{host}{cookie}\r\n");
            format!(
                "local req = {}\nfunction request() return req end\n{DONE}",
                lua_string(&req)
            )
        }
        Load::Forged { path, cookie_name } => {
            let prefix = format!("GET {path} HTTP/1.1\r\n{host}Cookie: {cookie_name}=");
            format!("local PREFIX = {}\n{FORGED}{DONE}", lua_string(&prefix))
        }
        Load::PostJson { path, body } => {
            let req = format!(
                "POST {path} HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            format!(
                "local req = {}\nfunction request() return req end\n{DONE}",
                lua_string(&req)
            )
        }
    }
}

/// How to run wrk.
#[derive(Clone, Debug)]
pub(crate) struct Wrk {
    pub(crate) program: PathBuf,
    pub(crate) dir: PathBuf,
}

impl Wrk {
    /// Checks that wrk runs at all, with a clear message when it is missing.
    pub(crate) fn check(&self) -> Result<String> {
        match Command::new(&self.program).arg("-v").output() {
            // `wrk -v` prints its version and the usage, and exits with 1.
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                let first = text.lines().next().unwrap_or_default().trim().to_owned();
                if !first.starts_with("wrk") {
                    bail!(
                        "{} does not look like wrk (it printed {first:?})",
                        self.program.display()
                    );
                }
                Ok(first)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => bail!(
                "the load generator wrk was not found ({}). Install it (Debian/Ubuntu: \
                 `apt-get install -y wrk`) or pass --wrk /path/to/wrk",
                self.program.display()
            ),
            Err(e) => Err(anyhow!(e).context(format!("running {}", self.program.display()))),
        }
    }

    /// Starts one load of `seconds` with `connections` over `threads`.
    pub(crate) fn start(
        &self,
        name: &str,
        load: &Load<'_>,
        addr: SocketAddr,
        threads: u32,
        connections: u32,
        seconds: u64,
    ) -> Result<Running> {
        let script_path = self.dir.join(format!("{name}.lua"));
        std::fs::write(&script_path, script(load, addr))
            .with_context(|| format!("writing {}", script_path.display()))?;
        let child = Command::new(&self.program)
            .arg("-t")
            .arg(threads.max(1).to_string())
            .arg("-c")
            .arg(connections.max(threads.max(1)).to_string())
            .arg("-d")
            .arg(format!("{seconds}s"))
            .arg("--timeout")
            .arg("10s")
            .arg("-s")
            .arg(&script_path)
            .arg(format!("http://{addr}{}", load.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        Ok(Running {
            child,
            script: script_path,
        })
    }
}

/// A wrk process under way.
pub(crate) struct Running {
    child: Child,
    script: PathBuf,
}

impl Running {
    /// Waits for wrk (so that its CPU time is added to this process's children) and parses it.
    pub(crate) fn finish(self) -> Result<Report> {
        let out = self.child.wait_with_output().context("waiting for wrk")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("TESSERA_BENCH "))
            .with_context(|| {
                format!(
                    "wrk ({}) printed no report; status {}, stderr: {}",
                    script_name(&self.script),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })?;
        parse(line)
    }
}

fn script_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse(line: &str) -> Result<Report> {
    let mut r = Report::default();
    let mut duration_us = 0.0;
    for pair in line.split_whitespace().skip(1) {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("bad wrk report {line:?}"))?;
        let v: f64 = v
            .parse()
            .with_context(|| format!("bad number in wrk report {line:?}"))?;
        match k {
            "requests" => r.requests = v as u64,
            "duration_us" => duration_us = v,
            "p50_us" => r.p50_us = v,
            "p99_us" => r.p99_us = v,
            "max_us" => r.max_us = v,
            "status" => r.status_errors = v as u64,
            "connect" | "read" | "write" | "timeout" => r.socket_errors += v as u64,
            _ => {}
        }
    }
    r.duration_s = duration_us / 1e6;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_line() {
        let r = parse("TESSERA_BENCH requests=100 duration_us=2000000 p50_us=120 p99_us=900 max_us=5000 status=10 connect=0 read=1 write=0 timeout=2")
            .expect("parses");
        assert_eq!(r.requests, 100);
        assert_eq!(r.status_errors, 10);
        assert_eq!(r.socket_errors, 3);
        assert!((r.per_second() - 50.0).abs() < 1e-9);
        assert!((r.ok_per_second() - 45.0).abs() < 1e-9);
    }

    #[test]
    fn quotes_lua_strings() {
        assert_eq!(lua_string("a\"b\\\r\n"), "\"a\\\"b\\\\\\r\\n\"");
    }
}
