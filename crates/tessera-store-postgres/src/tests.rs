use tessera_domain::StoreError;

use super::*;

#[test]
fn schema_names_need_no_quoting() {
    for good in ["t_0123abcd", "tessera", "_x", &"a".repeat(63)] {
        assert!(valid_schema_name(good), "{good}");
    }
    for bad in [
        "",
        "Tessera",
        "t-1",
        "a\"b",
        "x; DROP SCHEMA public",
        "pg_temp",
        "1abc",
        &"a".repeat(64),
        "schéma",
    ] {
        assert!(!valid_schema_name(bad), "{bad}");
    }
}

#[tokio::test]
async fn bad_urls_and_schemas_are_refused_without_echo() {
    let err = PgStore::connect("postgres://u:s3cr3t-pw@[::1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    let err = PgStore::connect_with_schema("postgres://u@127.0.0.1/db", "x\"; --")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: refused at once, nothing listens there.
    let err = PgStore::connect_with_schema("postgres://u:s3cr3t-pw@127.0.0.1:1/db", "t_x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
}

/// Every file in `migrations/` is embedded, under the version and description its name gives.
#[test]
fn every_migration_file_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    tessera_store_sql::migrations::check_embedded(&dir, MIGRATIONS).unwrap();
}

/// An unreachable server is reported at once with its address and the real cause, not as a
/// pool time-out (which would say neither), and without the password.
#[tokio::test]
async fn an_unreachable_server_is_named_with_its_cause() {
    // Port 1 on loopback: nothing listens there, the kernel refuses at once.
    let err = PgStore::connect("postgres://postgres:s3cretpw@127.0.0.1:1/test?password=s3cretpw")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(!text.contains("s3cretpw"), "{text}");
}

/// sqlx logs an unknown URL parameter with its value: such a URL is refused before sqlx sees
/// it, and the error repeats neither the name nor the value.
#[tokio::test]
async fn unknown_url_parameters_are_refused_without_echo() {
    for url in [
        "postgres://u@127.0.0.1:1/db?sslpassword=s3cretpw",
        "postgres://u@127.0.0.1:1/db?sslmode=disable&pasword=s3cretpw",
    ] {
        let err = PgStore::connect(url).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert!(text.contains("does not know"), "{text}");
        assert!(
            !text.contains("s3cretpw") && !text.contains("pasword"),
            "{text}"
        );
    }
    // Known ones pass on to the connection attempt (refused: nothing listens on port 1).
    let err = PgStore::connect(
        "postgres://u@127.0.0.1:1/db?sslmode=disable&password=x&options[search_path]=s",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
