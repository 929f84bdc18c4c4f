//! The connection pool to PostgreSQL, waiting for the database at start, and the
//! wording of database errors.
//!
//! The pool (deadpool-postgres) opens connections on demand and checks each one with
//! an empty query before handing it out (`RecyclingMethod::Verified`), so a restart
//! of the database costs no restart of the API: requests fail with 503 while it is
//! down, and the next request after it is back opens a fresh connection.

use std::error::Error as _;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (opening one included).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the database is, for messages (never the password).
#[derive(Debug, Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub display: String,
}

impl Target {
    /// Parses `--database-url` and adds the password read from its file (when not
    /// empty).
    pub fn new(url: &str, password: &str) -> anyhow::Result<Target> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            anyhow::anyhow!(
                "--database-url {url:?} is not a PostgreSQL URL: {e}: write it as \
                 postgres://<user>@<host>:<port>/<database>"
            )
        })?;
        if config.get_password().is_some() {
            anyhow::bail!(
                "--database-url must not hold a password: put it in the file named by \
                 --database-password-file"
            );
        }
        if !password.is_empty() {
            config.password(password);
        }
        config.connect_timeout(CHECKOUT_TIMEOUT);
        config.application_name("turtle-api");
        let display = display(&config);
        Ok(Target { config, display })
    }

    /// A pool that opens connections on demand (nothing is connected yet).
    pub fn pool(&self) -> Pool {
        let manager = Manager::from_config(
            self.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CHECKOUT_TIMEOUT))
            .create_timeout(Some(CHECKOUT_TIMEOUT))
            .recycle_timeout(Some(CHECKOUT_TIMEOUT))
            .build()
            .expect("a pool with a runtime and timeouts builds")
    }
}

/// `user@host:port/database` (every host when several are given).
fn display(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        port,
        config.get_dbname().unwrap_or("")
    )
}

/// Waits until the database answers a query, for at most `max` (`--db-wait`).
/// Logs once when it starts waiting and every ten seconds after. Refused
/// credentials end the wait at once: trying again cannot help.
pub async fn wait(pool: &Pool, target: &Target, max: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last_log: Option<Instant> = None;
    loop {
        let error = match check(pool).await {
            Ok(()) => {
                if last_log.is_some() {
                    tracing::info!(
                        "the database at {} answers after {} s",
                        target.display,
                        start.elapsed().as_secs()
                    );
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if let CheckError::Refused(why) = &error {
            anyhow::bail!(
                "the database at {} refused the connection: {why}: check --database-url \
                 and --database-password-file (the db-password secret)",
                target.display
            );
        }
        let waited = start.elapsed();
        if waited >= max {
            anyhow::bail!(
                "the database at {} did not answer within {} s (--db-wait): {error}: is \
                 the db service running, and is --database-url right?",
                target.display,
                max.as_secs()
            );
        }
        if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::info!(
                "waiting for the database at {} ({} s of --db-wait {} s): {error}",
                target.display,
                waited.as_secs(),
                max.as_secs()
            );
            last_log = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(1).min(max - waited)).await;
    }
}

/// Why the database did not answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// It is not there (yet): connection refused, timed out, shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// It answered and refused us (bad password, unknown role or database).
    #[error("{0}")]
    Refused(String),
}

/// Takes a connection and runs `SELECT 1` (the health check), within
/// [`CHECKOUT_TIMEOUT`] in all.
pub async fn check(pool: &Pool) -> Result<(), CheckError> {
    let query = async {
        let client = pool.get().await.map_err(|e| match &e {
            PoolError::Backend(pg) if is_refusal(pg) => CheckError::Refused(describe(pg)),
            _ => CheckError::Unavailable(describe_pool_error(&e)),
        })?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| CheckError::Unavailable(describe(&e)))?;
        Ok(())
    };
    match tokio::time::timeout(CHECKOUT_TIMEOUT * 2, query).await {
        Ok(result) => result,
        Err(_) => Err(CheckError::Unavailable(format!(
            "no answer within {} s",
            (CHECKOUT_TIMEOUT * 2).as_secs()
        ))),
    }
}

/// The server refused the login: SQLSTATE class 28 (authorization) or an unknown
/// database.
fn is_refusal(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        code.code().starts_with("28") || *code == SqlState::INVALID_CATALOG_NAME
    })
}

/// Whether an error means the database is not there rather than a fault of ours:
/// a closed connection, an IO error, or a connection-class / shutdown SQLSTATE.
pub fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its sources, joined with `: ` (tokio-postgres puts the useful part
/// in the source: "error connecting to server: Connection refused").
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A pool error in words.
pub fn describe_pool_error(e: &PoolError) -> String {
    match e {
        PoolError::Backend(pg) => describe(pg),
        PoolError::Timeout(kind) => format!("no connection within the timeout ({kind:?})"),
        other => other.to_string(),
    }
}
