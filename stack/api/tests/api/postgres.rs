//! A throwaway PostgreSQL cluster for one test: `initdb` into a temporary directory,
//! `postgres` listening on a unix socket there only, stopped (by its PID) when the
//! guard drops, even when the test fails. As root, both run as the `postgres` system
//! user (initdb refuses root), with the directory handed to that user.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role and password of the cluster's superuser (the API logs in as it).
pub const USER: &str = "turtle";
pub const PASSWORD: &str = "pg-test-password";
/// The socket's port number (it only names the socket file: no TCP).
const PORT: u16 = 5432;

const INSTALL_HINT: &str = "the PostgreSQL server is not installed: install it with \
                            `apt-get install -y postgresql` (Debian; scripts/setup does it)";

pub struct Postgres {
    bin: PathBuf,
    /// Switch to this uid/gid to run the server (when the tests run as root).
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// A new cluster, initialised and not started.
    pub fn init() -> Postgres {
        let bin = server_bin().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let dir = tempfile::Builder::new()
            .prefix("turtle-api-pg-")
            .tempdir()
            .expect("a temporary directory");
        let run_as = if fs::metadata("/proc/self").expect("/proc/self").uid() == 0 {
            let ids = system_user("postgres").unwrap_or_else(|| {
                panic!("running as root needs the `postgres` system user to run PostgreSQL: {INSTALL_HINT}")
            });
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1)).expect("chown");
            Some(ids)
        } else {
            None
        };
        let pg = Postgres {
            bin,
            run_as,
            child: None,
            dir,
        };
        fs::create_dir(pg.socket_dir()).expect("socket dir");
        let pwfile = pg.dir.path().join("pwfile");
        fs::write(&pwfile, PASSWORD).expect("pwfile");
        if let Some((uid, gid)) = run_as {
            for p in [pg.socket_dir(), pwfile.clone()] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
            }
        }
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args([
                "-U",
                USER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// A new cluster, started.
    pub fn start_new() -> Postgres {
        let mut pg = Postgres::init();
        pg.start();
        pg
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `--database-url` for this cluster (over its unix socket).
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}@/postgres?host={}&port={PORT}",
            self.socket_dir().display()
        )
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "postgres is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.socket_dir())
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=40"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits for `ready` in postmaster.pid (its eighth line is the server's state).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid_file = self.data_dir().join("postmaster.pid");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "postgres exited ({status}) while starting: {}",
                    self.log_tail()
                );
            }
            let ready = fs::read_to_string(&pid_file)
                .ok()
                .is_some_and(|text| text.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within 60 s: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (fast shutdown: SIGINT, then SIGKILL if it lingers) and
    /// waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A client of its own (for what the API does not do: tampering, inspecting).
    pub async fn client(&self) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = self.url().parse().unwrap();
        config.password(PASSWORD);
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding the server.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").is_file() && bin.join("initdb").is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The uid and gid of a system user, from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == name)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}
