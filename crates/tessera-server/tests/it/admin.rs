//! The admin API: bearer admin tokens or administrator sessions; plain users are refused.

use axum::http::{Method, StatusCode};
use tessera_domain::account::Role;

use crate::harness::{PASSWORD, harness};

#[tokio::test]
async fn admin_api_needs_an_admin() {
    let h = harness().await;
    let none = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &[],
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let bad = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &[("authorization", "Bearer tsa_nope")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let forged = format!("Bearer tsa_{}", "A".repeat(43));
    let r = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &[("authorization", &forged)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (user, _) = h.session("ada").await;
    let r = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &[("cookie", &user)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admin_token_manages_users() {
    let h = harness().await;
    let admin = h.admin();
    let auth = [("authorization", admin.as_str())];
    let r = h
        .json(Method::POST, "/admin/api/users", serde_json::json!({"username": "Carol", "email": "carol@example.com", "groups": ["ops", "eng", "ops"], "password": "a long passphrase for C"}), &auth)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["username"], "carol");
    assert_eq!(r.json()["groups"], serde_json::json!(["eng", "ops"]));
    // Taken name, weak password, bad input: 400 with a useful description.
    for (body, needle) in [
        (serde_json::json!({"username": "carol"}), "conflict"),
        (
            serde_json::json!({"username": "dave", "password": "password123"}),
            "commonly used",
        ),
        (
            serde_json::json!({"username": "dave", "password": "short"}),
            "shorter than 8",
        ),
        (
            serde_json::json!({"username": "bad name"}),
            "username must be",
        ),
        (
            serde_json::json!({"username": "dave", "email": "nope"}),
            "email",
        ),
        (
            serde_json::json!({"username": "dave", "role": "admin"}),
            "shape",
        ),
    ] {
        let r = h
            .json(Method::POST, "/admin/api/users", body.clone(), &auth)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{body}: {}",
            r.body
        );
    }
    let list = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &auth,
        )
        .await;
    let names: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ada", "carol"]);
    assert!(
        !list.body.contains("argon2"),
        "no password hashes in the API"
    );
    assert_eq!(
        h.login("carol", "a long passphrase for C").await.status,
        StatusCode::OK
    );
    let r = h
        .json(
            Method::DELETE,
            "/admin/api/users/carol",
            serde_json::Value::Null,
            &auth,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .json(
            Method::GET,
            "/admin/api/users/carol",
            serde_json::Value::Null,
            &auth,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = h
        .json(
            Method::GET,
            "/admin/api/audit?limit=50",
            serde_json::Value::Null,
            &auth,
        )
        .await;
    let kinds: Vec<String> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "account_created")
            && kinds.iter().any(|k| k == "account_deleted"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn admin_sessions_work_with_csrf() {
    let h = harness().await;
    h.add_user("root", None, &[], Role::Admin).await;
    let r = h.login("root", PASSWORD).await;
    let cookie = r.cookie("tessera").unwrap();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    let list = h
        .json(
            Method::GET,
            "/admin/api/users",
            serde_json::Value::Null,
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let no_csrf = h
        .json(
            Method::POST,
            "/admin/api/users/ada/disable",
            serde_json::json!({}),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let ok = h
        .json(
            Method::POST,
            "/admin/api/users/ada/disable",
            serde_json::json!({}),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    // No second bootstrap token once an admin exists.
    assert!(h.state.bootstrap_admin().await.unwrap().is_none());
}
