//! The supervisor's state, in SQLite.
//!
//! What lives here: the applied projects (the desired state the daemon keeps
//! alive) and their history, the services a user stopped on purpose, restart
//! counters, and an event log. What does not: the engine's current state,
//! which is always observed.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a committed
//! transaction survives SIGKILL and power loss. One connection behind a mutex
//! serves the process; every statement is short, and other processes (the CLI
//! running without a daemon) open their own connection with a busy timeout.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use turtle_compose::{Project, ProjectName};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source} (set --state-dir to a writable directory)")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "stored project {name:?} is unreadable ({source}): remove it with `turtle down -p NAME` or apply it again"
    )]
    Corrupt {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: i64,
    /// Unix time in milliseconds.
    pub time: i64,
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `applied`, `removed`, `died`, `unhealthy-restart`, `recreated`, `crash-loop`, ...
    pub kind: String,
    pub message: String,
}

pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    project TEXT,
    action TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    project TEXT NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (project, service)
);
CREATE TABLE IF NOT EXISTS restarts (
    project TEXT NOT NULL,
    service TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (project, service)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    project TEXT NOT NULL,
    service TEXT,
    container TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    seq INTEGER NOT NULL,
    release TEXT NOT NULL,
    UNIQUE (project, seq)
);
CREATE TABLE IF NOT EXISTS journal (
    project TEXT PRIMARY KEY,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_service ON events (project, service, kind, time);
";

/// Events kept; older ones are trimmed as new ones arrive.
const EVENTS_KEPT: i64 = 10_000;

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// A store in memory, written nowhere: for a dry run, which must leave
    /// the state directory as it found it.
    pub fn in_memory() -> Result<Self> {
        let path = std::path::PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Sql {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Opens (creating if needed) `turtle.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir_err = |source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        // A directory Turtle makes is 0700; one that exists keeps its mode
        // (never chmod what Turtle did not create). The database itself is
        // 0600 whatever the umask, and SQLite gives its WAL files the
        // database's mode.
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(dir_err)?;
        }
        let path = dir.join("turtle.db");
        {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(dir_err(e)),
            }
        }
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StoreError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    /// Records `project` as applied (the desired state from now on).
    pub fn save_project(&self, project: &Project) -> Result<()> {
        let json = serde_json::to_string(project).expect("a project always serializes");
        let at = now_millis();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO projects (name, project, applied_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET project = ?2, applied_at = ?3",
                params![project.name.as_str(), json, at],
            )?;
            tx.execute(
                "INSERT INTO history (name, project, action, at) VALUES (?1, ?2, 'applied', ?3)",
                params![project.name.as_str(), json, at],
            )?;
            tx.commit()
        })
    }

    /// Forgets a project (after `down`).
    pub fn remove_project(&self, name: &ProjectName) -> Result<()> {
        let name = name.as_str();
        let at = now_millis();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute("DELETE FROM projects WHERE name = ?1", params![name])?;
            tx.execute("DELETE FROM held WHERE project = ?1", params![name])?;
            tx.execute("DELETE FROM restarts WHERE project = ?1", params![name])?;
            tx.execute(
                "INSERT INTO history (name, project, action, at) VALUES (?1, NULL, 'removed', ?2)",
                params![name, at],
            )?;
            tx.commit()
        })
    }

    /// The applied project named `name`; a stored one that does not read
    /// back as a valid project (a name that is not a name, say) is an error.
    pub fn project(&self, name: &ProjectName) -> Result<Option<Project>> {
        let json: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT project FROM projects WHERE name = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )
            .optional()
        })?;
        json.map(|j| read_project(name.as_str(), &j)).transpose()
    }

    /// Every applied project. One stored project that does not read back as
    /// a valid project (written by an older version, or by hand) is logged
    /// and left out, so it is never acted on and the others are still kept
    /// alive.
    pub fn projects(&self) -> Result<Vec<Project>> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut st = c.prepare("SELECT name, project FROM projects ORDER BY name")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, j)| match read_project(&name, &j) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("skipping a stored project: {e}");
                    None
                }
            })
            .collect())
    }

    /// Number of times each project was applied or removed, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<(String, i64)>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT action, at FROM history WHERE name = ?1 ORDER BY id DESC")?;
            st.query_map(params![name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// Marks a service as stopped (or no longer stopped) by the user.
    pub fn set_held(&self, project: &str, service: &str, held: bool) -> Result<()> {
        self.with(|c| {
            if held {
                c.execute(
                    "INSERT OR IGNORE INTO held (project, service) VALUES (?1, ?2)",
                    params![project, service],
                )?;
            } else {
                c.execute(
                    "DELETE FROM held WHERE project = ?1 AND service = ?2",
                    params![project, service],
                )?;
            }
            Ok(())
        })
    }

    pub fn clear_held(&self, project: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM held WHERE project = ?1", params![project])
                .map(|_| ())
        })
    }

    pub fn held(&self, project: &str) -> Result<HashSet<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT service FROM held WHERE project = ?1")?;
            st.query_map(params![project], |r| r.get(0))?.collect()
        })
    }

    /// Counts one restart the supervisor made of a service.
    pub fn bump_restarts(&self, project: &str, service: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO restarts (project, service, count) VALUES (?1, ?2, 1)
                 ON CONFLICT(project, service) DO UPDATE SET count = count + 1",
                params![project, service],
            )
            .map(|_| ())
        })
    }

    /// Restarts the supervisor made, by service.
    pub fn restarts(&self, project: &str) -> Result<HashMap<String, i64>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT service, count FROM restarts WHERE project = ?1")?;
            st.query_map(params![project], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// Appends to the event log; returns the stored record.
    pub fn record_event(
        &self,
        project: &str,
        service: Option<&str>,
        container: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<EventRecord> {
        let time = now_millis();
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO events (time, project, service, container, kind, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![time, project, service, container, kind, message],
            )?;
            let id = c.last_insert_rowid();
            if id % 100 == 0 {
                c.execute("DELETE FROM events WHERE id <= ?1", params![id - EVENTS_KEPT])?;
            }
            Ok(id)
        })?;
        Ok(EventRecord {
            id,
            time,
            project: project.into(),
            service: service.map(Into::into),
            container: container.map(Into::into),
            kind: kind.into(),
            message: message.into(),
        })
    }

    /// How many `kind` events a service had since `since` (unix milliseconds).
    pub fn count_events(
        &self,
        project: &str,
        service: &str,
        kind: &str,
        since: i64,
    ) -> Result<i64> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM events WHERE project = ?1 AND service = ?2 AND kind = ?3 AND time >= ?4",
                params![project, service, kind, since],
                |r| r.get(0),
            )
        })
    }

    /// Events with an ID above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: i64) -> Result<Vec<EventRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, time, project, service, container, kind, message FROM events
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            st.query_map(params![after, limit], |r| {
                Ok(EventRecord {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    project: r.get(2)?,
                    service: r.get(3)?,
                    container: r.get(4)?,
                    kind: r.get(5)?,
                    message: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    /// The last `n` events, oldest first.
    pub fn recent_events(&self, n: i64) -> Result<Vec<EventRecord>> {
        let last: i64 = self
            .with(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)))?;
        self.events_after((last - n).max(0), n)
    }
}

/// A stored project, read back: it must parse (its names are parsed with it)
/// and be stored under its own name.
fn read_project(name: &str, json: &str) -> Result<Project> {
    let corrupt = |source| StoreError::Corrupt {
        name: name.to_string(),
        source,
    };
    let project: Project = serde_json::from_str(json).map_err(corrupt)?;
    if project.name != name {
        return Err(corrupt(serde::de::Error::custom(format!(
            "it is stored under another name than its own, {}",
            project.name
        ))));
    }
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ProjectName {
        s.parse().unwrap()
    }

    fn project(n: &str) -> Project {
        Project {
            name: name(n),
            working_dir: "/tmp".into(),
            files: vec![],
            services: Default::default(),
            networks: Default::default(),
            volumes: Default::default(),
            secrets: Default::default(),
            configs: Default::default(),
        }
    }

    #[test]
    fn projects_survive_reopening_and_removal_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.save_project(&project("a")).unwrap();
            s.save_project(&project("b")).unwrap();
            s.set_held("a", "web", true).unwrap();
            s.bump_restarts("a", "web").unwrap();
            s.bump_restarts("a", "web").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.projects().unwrap().len(), 2);
        assert_eq!(s.project(&name("a")).unwrap().unwrap().name, "a");
        assert!(s.held("a").unwrap().contains("web"));
        assert_eq!(s.restarts("a").unwrap()["web"], 2);
        s.remove_project(&name("a")).unwrap();
        assert!(s.project(&name("a")).unwrap().is_none());
        assert!(s.held("a").unwrap().is_empty());
        let h: Vec<String> = s
            .history("a")
            .unwrap()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(h, ["removed", "applied"]);
    }

    /// A stored project that is not valid (an older version's, one edited by
    /// hand, the path of an attack) is never handed out: the list leaves it
    /// out and keeps the others, a lookup is an error naming it.
    #[test]
    fn an_invalid_stored_project_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.save_project(&project("good")).unwrap();
        let mut bad = serde_json::to_value(project("x")).unwrap();
        bad["name"] = "../../../tmp/victim".into();
        let mut bad_service = serde_json::to_value(project("svc")).unwrap();
        bad_service["services"] = serde_json::json!({"../x": {}});
        let other = serde_json::to_value(project("other")).unwrap();
        for (key, json) in [
            ("../../../tmp/victim", &bad),
            ("svc", &bad_service),
            ("renamed", &other),
        ] {
            s.with(|c| {
                c.execute(
                    "INSERT INTO projects (name, project, applied_at) VALUES (?1, ?2, 0)",
                    params![key, json.to_string()],
                )
            })
            .unwrap();
        }
        let names: Vec<String> = s
            .projects()
            .unwrap()
            .into_iter()
            .map(|p| p.name.into())
            .collect();
        assert_eq!(names, ["good"]);
        for key in ["svc", "renamed"] {
            let e = s.project(&name(key)).unwrap_err().to_string();
            assert!(e.contains(&format!("stored project \"{key}\"")), "{e}");
        }
        let e = s.project(&name("svc")).unwrap_err().to_string();
        assert!(e.contains("invalid service name \"../x\""), "{e}");
    }

    #[test]
    fn events_page_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 0..5 {
            s.record_event("p", Some("web"), None, "died", &format!("exit {i}"))
                .unwrap();
        }
        let all = s.events_after(0, 100).unwrap();
        assert_eq!(all.len(), 5);
        let tail = s.recent_events(2).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["exit 3", "exit 4"]
        );
        assert_eq!(s.events_after(all[3].id, 100).unwrap().len(), 1);
    }

    #[test]
    fn a_state_directory_keeps_its_mode_and_the_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // Made by Turtle: 0700, every missing level.
        let made = dir.path().join("a/state");
        Store::open(&made).unwrap();
        assert_eq!(mode(&made), 0o700);
        assert_eq!(mode(&made.join("turtle.db")), 0o600);
        // The operator's: left as it is.
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o751)).unwrap();
        Store::open(&theirs).unwrap();
        assert_eq!(mode(&theirs), 0o751);
        assert_eq!(mode(&theirs.join("turtle.db")), 0o600);
    }
}
