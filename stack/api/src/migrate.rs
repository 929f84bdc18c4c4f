//! The schema, as ordered SQL files embedded in the binary and applied at start.
//!
//! Each file `migrations/NNNN_<name>.sql` runs once. All pending files run in one
//! transaction that first takes a transaction-scoped advisory lock, so two API
//! processes starting at once apply them once, and a failing file leaves the schema
//! as it was. `schema_migrations` records each file's version, name, SHA-256 and
//! time; an applied file whose text changed since is an error naming it (write a new
//! migration instead), and so is a database whose schema is newer than this binary.
//!
//! Rejected design: a migration crate (refinery, sqlx-migrate). They bring their own
//! database drivers or macro machinery for what is here some forty lines, and none
//! of them both takes a tokio-postgres client and locks with an advisory lock inside
//! the migration transaction.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The number in its file name; versions are 1, 2, 3, ... in order.
    pub version: i32,
    /// The file name without `.sql`, such as `0001_init`.
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration of the schema, in order. A test checks this list against the
/// files in `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_hardening",
        sql: include_str!("../migrations/0002_hardening.sql"),
    },
];

/// The advisory lock the migrations hold ("turtle" in ASCII, then 1).
const LOCK_KEY: i64 = 0x7475_7274_6c65_0001;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "migration {name} (version {version}) was applied with SHA-256 {applied} but this \
         binary carries {embedded}: an applied migration must never change; restore it \
         and put the change in a new migration"
    )]
    Changed {
        version: i32,
        name: String,
        applied: String,
        embedded: String,
    },
    #[error(
        "the database holds migration {name} (version {version}) that this binary does not \
         know: the schema is newer than this turtle-api; run the newer version"
    )]
    Unknown { version: i32, name: String },
    #[error("migration {name} failed: {cause}: fix the SQL in migrations/{name}.sql")]
    Failed { name: String, cause: String },
    /// A migration found data it cannot carry over and said so (`RAISE
    /// EXCEPTION`): its message says what to change.
    #[error("migration {name} cannot run on this database: {message}")]
    Refused { name: String, message: String },
    #[error("database error while migrating: {0}")]
    Database(String),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Database(crate::db::describe(&e))
    }
}

/// SHA-256 of a migration's text, lowercase hex.
pub fn sha256(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies the pending `migrations` in one transaction; returns the names of the
/// ones it applied (empty when the schema was current).
pub async fn apply(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<&'static str>, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             sha256 text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let rows = tx
        .query(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in rows {
        let (version, name, digest): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(known) = migrations.iter().find(|m| m.version == version) else {
            return Err(MigrateError::Unknown { version, name });
        };
        let embedded = sha256(known.sql);
        if embedded != digest {
            return Err(MigrateError::Changed {
                version,
                name: known.name.to_string(),
                applied: digest,
                embedded,
            });
        }
        applied.push(version);
    }
    let mut done = Vec::new();
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if *db.code() == SqlState::RAISE_EXCEPTION => MigrateError::Refused {
                    name: m.name.to_string(),
                    message: db.message().to_string(),
                },
                _ => MigrateError::Failed {
                    name: m.name.to_string(),
                    cause: crate::db::describe(&e),
                },
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &sha256(m.sql)],
        )
        .await?;
        done.push(m.name);
    }
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list above is every file of `migrations/`, numbered 1, 2, 3, ... in order,
    /// each with the text of its file.
    #[test]
    fn the_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(
            files, listed,
            "every file in migrations/ must be in MIGRATIONS"
        );
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{} is out of sequence", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            let on_disk = std::fs::read_to_string(dir.join(format!("{}.sql", m.name))).unwrap();
            assert_eq!(on_disk, m.sql);
        }
    }
}
