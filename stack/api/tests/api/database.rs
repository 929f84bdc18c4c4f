//! The database's lifecycle as the API lives it: waiting at start, health through
//! a restart, migrations.

use turtle_api::App;
use turtle_fleet_api::{Client, Credentials, Health, HealthStatus};

use crate::fixture::{Captured, Files, Server, Stack, poll};
use crate::postgres::Postgres;

/// `/v1/health` is 200, turns 503 while PostgreSQL is stopped, and 200 again once
/// it is back, without restarting the API; other routes answer 503 meanwhile.
#[tokio::test]
async fn health_follows_the_database_through_a_restart() {
    // The client takes a health answer as 200 with "ok" or 503 with
    // "unhealthy", and nothing else: its status stands for the HTTP status.
    let mut stack = Stack::start().await;
    let admin = stack.admin();
    assert_eq!(
        stack.api.health().await.unwrap(),
        Health {
            database: "ok".into(),
            status: HealthStatus::Ok,
        }
    );
    // A connection in the pool, so the restart has a stale one to replace.
    admin.fleets().await.unwrap();

    stack.pg.stop();
    let down = poll("health turns 503", 30, || async {
        let health = stack.api.health().await.unwrap();
        (health.status == HealthStatus::Unhealthy).then_some(health)
    })
    .await;
    // Why it is down stays in the log: the route is public.
    assert_eq!(down.database, "unavailable (the api's log has the cause)");
    let e = admin.fleets().await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    let message = e.api_message().unwrap();
    assert!(
        message.starts_with("database unavailable (incident "),
        "{e}"
    );
    // The library's words ("error connecting to server: ... (os error 2)")
    // stay in the log.
    assert!(
        !message.contains("os error") && !message.contains("connecting"),
        "{e}"
    );

    stack.pg.start();
    poll("health turns 200", 30, || async {
        (stack.api.health().await.unwrap().status == HealthStatus::Ok).then_some(())
    })
    .await;
    admin.fleets().await.unwrap();
}

/// Start-up waits for the database, saying so in the log, and carries on once it
/// answers; with nothing answering it gives up after --db-wait naming the flag.
#[tokio::test]
async fn start_waits_for_the_database_then_gives_up() {
    // Only this test logs the wait, so the thread's own subscriber sees it (other
    // events may be missed: tracing caches callsite interest across threads).
    let (log, _guard) = Captured::install();
    let mut pg = Postgres::init();
    let files = Files::new();

    let e = App::start_with_env(&files.args(&pg, &["--db-wait", "1s"]), &|_| None)
        .await
        .err()
        .expect("no database: start fails");
    let e = format!("{e:#}");
    assert!(e.contains("did not answer within 1 s (--db-wait)"), "{e}");

    let args = files.args(&pg, &["--db-wait", "60s"]);
    let start = tokio::spawn(async move { App::start_with_env(&args, &|_| None).await });
    poll("the wait is logged", 30, || async {
        log.text()
            .contains("waiting for the database")
            .then_some(())
    })
    .await;
    assert!(!start.is_finished());
    pg.start();
    let app = start
        .await
        .unwrap()
        .expect("start succeeds once the database answers");
    let server = Server::start(app).await;
    let health = Client::new(&server.base, Credentials::None)
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!(health.status, HealthStatus::Ok);
}

/// A wrong database password ends the wait at once with what to check.
#[tokio::test]
async fn a_wrong_database_password_is_refused_at_once() {
    let pg = Postgres::start_new();
    let files = Files::new();
    std::fs::write(files.path("wrong-password"), "nope").unwrap();
    let args = files.args(
        &pg,
        &[
            "--database-password-file",
            files.path("wrong-password").to_str().unwrap(),
        ],
    );
    let e = App::start_with_env(&args, &|_| None)
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(e.contains("refused the connection"), "{e}");
    assert!(e.contains("--database-password-file"), "{e}");
}

/// Migrations run once: two APIs starting at once on a new database both come up
/// with one record per migration, a restart applies nothing, and an applied
/// migration whose text changed is refused by name.
#[tokio::test]
async fn migrations_apply_once_and_tampering_is_refused() {
    let pg = Postgres::start_new();
    let files = Files::new();
    let args = files.args(&pg, &[]);
    let (a, b) = tokio::join!(
        App::start_with_env(&args, &|_| None),
        App::start_with_env(&args, &|_| None)
    );
    a.unwrap();
    b.unwrap();
    let client = pg.client().await;
    let rows = client
        .query(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let migrations = turtle_api::migrate::MIGRATIONS;
    assert_eq!(rows.len(), migrations.len());
    for (row, m) in rows.iter().zip(migrations) {
        assert_eq!(row.get::<_, i32>(0), m.version);
        assert_eq!(row.get::<_, String>(1), m.name);
        assert_eq!(row.get::<_, String>(2), turtle_api::migrate::sha256(m.sql));
    }
    let applied_at: Vec<String> = client
        .query(
            "SELECT applied_at::text FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    App::start_with_env(&args, &|_| None).await.unwrap();
    let again: Vec<String> = client
        .query(
            "SELECT applied_at::text FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(applied_at, again, "a restart re-applied a migration");

    client
        .execute(
            "UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let e = App::start_with_env(&args, &|_| None)
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(e.contains("migration 0001_init (version 1)"), "{e}");
    assert!(e.contains("must never change"), "{e}");

    client
        .execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES (999, '0999_future', 'x')",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE schema_migrations SET sha256 = $1 WHERE version = 1",
            &[&turtle_api::migrate::sha256(migrations[0].sql)],
        )
        .await
        .unwrap();
    let e = App::start_with_env(&args, &|_| None)
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(e.contains("0999_future") && e.contains("newer"), "{e}");
}

/// A database made before fleet names followed the repository grammar, with a
/// fleet named `-`, is not migrated: the error names the fleet and the fix.
#[tokio::test]
async fn a_fleet_name_outside_the_grammar_stops_the_migration() {
    let pg = Postgres::start_new();
    let files = Files::new();
    let mut client = pg.client().await;
    let migrations = turtle_api::migrate::MIGRATIONS;
    turtle_api::migrate::apply(&mut client, &migrations[..1])
        .await
        .unwrap();
    client
        .execute("INSERT INTO fleets (name) VALUES ('-'), ('ok')", &[])
        .await
        .unwrap();
    let e = App::start_with_env(&files.args(&pg, &[]), &|_| None)
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(
        e.contains("migration 0002_hardening cannot run on this database"),
        "{e}"
    );
    assert!(e.contains("'-' (id 1)") && !e.contains("'ok'"), "{e}");
    assert!(e.contains("UPDATE fleets SET name"), "{e}");
    client
        .execute("UPDATE fleets SET name = 'renamed' WHERE name = '-'", &[])
        .await
        .unwrap();
    App::start_with_env(&files.args(&pg, &[]), &|_| None)
        .await
        .expect("migrates once renamed");
}
