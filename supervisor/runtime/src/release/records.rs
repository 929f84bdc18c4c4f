//! Releases and the update journal in the store.
//!
//! A release is one row (its JSON); its outcome changes in place. The
//! journal has at most one entry per project: the update in flight. Each
//! write is one transaction, so a SIGKILL leaves either the old or the new
//! row.

use rusqlite::{OptionalExtension, params};

use super::{Journal, Outcome, Release};
use crate::store::{Result, Store, StoreError, now_millis};

fn read<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
        name: what.to_string(),
        source,
    })
}

impl Store {
    /// Records a new release, giving it the project's next sequence number
    /// (and that number as its version when it has none).
    pub fn add_release(&self, release: &mut Release) -> Result<()> {
        let project = release.project.clone();
        let seq: i64 = self.with(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM releases WHERE project = ?1",
                params![project],
                |r| r.get(0),
            )
        })?;
        release.seq = seq;
        if release.version.is_empty() {
            release.version = seq.to_string();
        }
        let json = serde_json::to_string(&*release).expect("a release always serializes");
        self.with(|c| {
            c.execute(
                "INSERT INTO releases (id, project, seq, release) VALUES (?1, ?2, ?3, ?4)",
                params![release.id, project, seq, json],
            )
            .map(|_| ())
        })
    }

    /// Rewrites a release (its pinned images, once downloaded).
    pub fn update_release(&self, release: &Release) -> Result<()> {
        let json = serde_json::to_string(release).expect("a release always serializes");
        self.with(|c| {
            c.execute(
                "UPDATE releases SET release = ?2 WHERE id = ?1",
                params![release.id, json],
            )
            .map(|_| ())
        })
    }

    /// Sets a release's outcome (and why), with the time it was decided.
    pub fn finish_release(&self, id: &str, outcome: Outcome, reason: Option<&str>) -> Result<()> {
        let Some(mut r) = self.release(id)? else {
            return Ok(());
        };
        r.outcome = outcome;
        r.reason = reason.map(str::to_string);
        r.finished_ms = (outcome != Outcome::Pending).then(now_millis);
        let json = serde_json::to_string(&r).expect("a release always serializes");
        self.with(|c| {
            c.execute(
                "UPDATE releases SET release = ?2 WHERE id = ?1",
                params![id, json],
            )
            .map(|_| ())
        })
    }

    pub fn release(&self, id: &str) -> Result<Option<Release>> {
        let json: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT release FROM releases WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
        })?;
        json.map(|j| read(&format!("release {id}"), &j)).transpose()
    }

    /// A project's releases, newest first.
    pub fn releases(&self, project: &str) -> Result<Vec<Release>> {
        let rows: Vec<String> = self.with(|c| {
            let mut st =
                c.prepare("SELECT release FROM releases WHERE project = ?1 ORDER BY seq DESC")?;
            st.query_map(params![project], |r| r.get(0))?.collect()
        })?;
        rows.iter()
            .map(|j| read(&format!("a release of {project}"), j))
            .collect()
    }

    /// The release running now: the last committed one.
    pub fn current_release(&self, project: &str) -> Result<Option<Release>> {
        Ok(self
            .releases(project)?
            .into_iter()
            .find(|r| r.outcome == Outcome::Committed))
    }

    /// Writes the journal entry of the project's update in flight.
    pub fn write_journal(&self, entry: &Journal) -> Result<()> {
        let json = serde_json::to_string(entry).expect("a journal entry always serializes");
        self.with(|c| {
            c.execute(
                "INSERT INTO journal (project, entry) VALUES (?1, ?2)
                 ON CONFLICT(project) DO UPDATE SET entry = ?2",
                params![entry.project, json],
            )
            .map(|_| ())
        })
    }

    /// Ends the project's update: its journal entry is removed and the
    /// release gets its outcome, in one transaction.
    pub fn close_journal(
        &self,
        project: &str,
        release: &str,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<()> {
        let Some(mut r) = self.release(release)? else {
            return self.with(|c| {
                c.execute("DELETE FROM journal WHERE project = ?1", params![project])
                    .map(|_| ())
            });
        };
        r.outcome = outcome;
        r.reason = reason.map(str::to_string);
        r.finished_ms = Some(now_millis());
        let json = serde_json::to_string(&r).expect("a release always serializes");
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "UPDATE releases SET release = ?2 WHERE id = ?1",
                params![release, json],
            )?;
            tx.execute("DELETE FROM journal WHERE project = ?1", params![project])?;
            tx.commit()
        })
    }

    /// Every update in flight (at the daemon's start: those a kill cut).
    pub fn journals(&self) -> Result<Vec<Journal>> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut st = c.prepare("SELECT project, entry FROM journal ORDER BY project")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        rows.iter()
            .map(|(p, j)| read(&format!("the update journal of {p}"), j))
            .collect()
    }

    pub fn journal(&self, project: &str) -> Result<Option<Journal>> {
        Ok(self.journals()?.into_iter().find(|j| j.project == project))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Origin, Phase};
    use super::*;

    fn release(id: &str) -> Release {
        Release {
            id: id.into(),
            project: "demo".into(),
            seq: 0,
            version: String::new(),
            notes: String::new(),
            created_ms: 1,
            origin: Origin::Push,
            compose: turtle_reconcile::test_support::project("demo", vec![]),
            images: Default::default(),
            outcome: Outcome::Pending,
            reason: None,
            finished_ms: None,
        }
    }

    #[test]
    fn releases_get_numbers_and_the_current_one_is_the_last_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut a = release("aaaaaaaaaaaa");
        store.add_release(&mut a).unwrap();
        let mut b = release("bbbbbbbbbbbb");
        b.version = "v2".into();
        store.add_release(&mut b).unwrap();
        assert_eq!((a.seq, a.version.as_str()), (1, "1"));
        assert_eq!((b.seq, b.version.as_str()), (2, "v2"));
        assert!(store.current_release("demo").unwrap().is_none());
        store
            .finish_release(&a.id, Outcome::Committed, None)
            .unwrap();
        store
            .finish_release(&b.id, Outcome::RolledBack, Some("web unhealthy"))
            .unwrap();
        assert_eq!(store.current_release("demo").unwrap().unwrap().id, a.id);
        let all = store.releases("demo").unwrap();
        assert_eq!(all[0].reason.as_deref(), Some("web unhealthy"));
        assert!(all[0].finished_ms.is_some());
    }

    #[test]
    fn the_journal_survives_a_reopen_and_closes_with_the_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = release("cccccccccccc");
        {
            let store = Store::open(dir.path()).unwrap();
            store.add_release(&mut r).unwrap();
            store
                .write_journal(&Journal {
                    project: "demo".into(),
                    release: r.id.clone(),
                    previous: None,
                    phase: Phase::Settle,
                    since_ms: 5,
                    settle_ms: 1000,
                    force: false,
                    reason: None,
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let j = store.journal("demo").unwrap().unwrap();
        assert_eq!(j.phase, Phase::Settle);
        store
            .close_journal("demo", &r.id, Outcome::Committed, None)
            .unwrap();
        assert!(store.journals().unwrap().is_empty());
        assert_eq!(
            store.release(&r.id).unwrap().unwrap().outcome,
            Outcome::Committed
        );
    }
}
