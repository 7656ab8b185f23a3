//! A server over a temporary SQLite database, driven in-process through the router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tessera_domain::account::{Email, Group, NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::clock::UnixTime;
use tessera_domain::credential::password::{Hasher, Password};
use tessera_domain::store::Store;
use tessera_server::{AppState, BlockingPasswords, SecondFactors, ServerConfig};
use tessera_store_sqlite::SqliteStore;
use tessera_testkit::FakeClock;
use tower::ServiceExt;

pub(crate) const ORIGIN: &str = "http://127.0.0.1:8080";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct Harness {
    pub(crate) state: AppState,
    pub(crate) app: Router,
    pub(crate) clock: FakeClock,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin_token: String,
    sqlite: Option<Arc<SqliteStore>>,
    dir: Option<tempfile::TempDir>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `name=value` pair of a Set-Cookie for `name`, if set.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }

    pub(crate) fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

pub(crate) async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub(crate) async fn harness_with(tune: impl FnOnce(&mut ServerConfig)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let mut h = harness_on(sqlite.clone(), tune).await;
    h.sqlite = Some(sqlite);
    h.dir = Some(dir);
    h
}

/// A harness over any store (used for PostgreSQL), with the user `ada`.
pub(crate) async fn harness_on(
    store: Arc<dyn Store>,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    harness_on_with(store, SecondFactors::default(), tune).await
}

/// A SQLite harness whose server has a master key ring and code senders.
pub(crate) async fn harness_factors(
    factors: SecondFactors,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let mut h = harness_on_with(sqlite.clone(), factors, tune).await;
    h.sqlite = Some(sqlite);
    h.dir = Some(dir);
    h
}

/// [`harness_on`] with a master key ring and code senders.
pub(crate) async fn harness_on_with(
    store: Arc<dyn Store>,
    factors: SecondFactors,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    let h = node_full(
        store,
        FakeClock::new(UnixTime(1_800_000_000)),
        factors,
        tune,
    )
    .await;
    h.add_user("ada", Some("ada@example.com"), &["eng", "ops"], Role::User)
        .await;
    h
}

/// A second server node over another connection to the same database, sharing the clock.
pub(crate) async fn node(store: Arc<dyn Store>, first: &Harness) -> Harness {
    node_with(store, first.clock.clone(), |_| {}).await
}

async fn node_with(
    store: Arc<dyn Store>,
    clock: FakeClock,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    node_full(store, clock, SecondFactors::default(), tune).await
}

async fn node_full(
    store: Arc<dyn Store>,
    clock: FakeClock,
    factors: SecondFactors,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    let mut config = ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
    tune(&mut config);
    config.validate().unwrap();
    let passwords = BlockingPasswords::new(Hasher::insecure_fast_for_tests(), 2, 64).unwrap();
    let state = AppState::with(
        config,
        store.clone(),
        Arc::new(clock.clone()),
        passwords,
        factors,
    )
    .await
    .unwrap();
    let admin_token = state
        .bootstrap_admin()
        .await
        .unwrap()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let app = tessera_server::router(state.clone());
    Harness {
        state,
        app,
        clock,
        store,
        admin_token,
        sqlite: None,
        dir: None,
    }
}

impl Harness {
    pub(crate) async fn add_user(
        &self,
        name: &str,
        email: Option<&str>,
        groups: &[&str],
        role: Role,
    ) {
        let new = NewAccount {
            username: Username::parse(name).unwrap(),
            email: email.map(|e| Email::parse(e).unwrap()),
            groups: groups.iter().map(|g| Group::parse(g).unwrap()).collect(),
            role,
        };
        let passwords = BlockingPasswords::new(Hasher::insecure_fast_for_tests(), 1, 4).unwrap();
        accounts::create(
            self.store.as_ref(),
            &passwords,
            &Default::default(),
            new,
            Some(Password::new(PASSWORD)),
            &Actor::default(),
            self.clock.now_time(),
        )
        .await
        .unwrap();
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut r = Request::builder().uri(path);
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }

    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        self.send(r.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> Reply {
        self.json(
            Method::POST,
            "/login",
            serde_json::json!({"username": username, "password": password}),
            &[],
        )
        .await
    }

    /// Logs in and returns (cookie pair, csrf token).
    pub(crate) async fn session(&self, username: &str) -> (String, String) {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let cookie = r.cookie("tessera").unwrap();
        let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }

    pub(crate) fn dir_path(&self) -> &std::path::Path {
        self.dir.as_ref().unwrap().path()
    }

    pub(crate) async fn close_store(&self) {
        self.sqlite.as_ref().unwrap().close().await;
    }

    pub(crate) fn admin(&self) -> String {
        format!("Bearer {}", self.admin_token)
    }
}

pub(crate) trait ClockExt {
    fn now_time(&self) -> UnixTime;
}

impl ClockExt for FakeClock {
    fn now_time(&self) -> UnixTime {
        use tessera_domain::clock::Clock;
        self.now()
    }
}
