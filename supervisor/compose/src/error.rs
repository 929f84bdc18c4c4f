//! The loader's error type: every variant says where (file, line, key path,
//! service) and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// Why a compose project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "no compose file found in {}: expected compose.yaml or docker-compose.yml (use -f FILE)",
        dir.display()
    )]
    NoComposeFile { dir: PathBuf },

    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}: invalid YAML{}: {message}", at_line_col(*line, *column))]
    Yaml {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },

    /// A problem at a key path of a file: unknown key, bad value, failed
    /// `${VAR:?msg}`.
    #[error("{}: {path}: {message}", Place(file, *line))]
    Invalid {
        file: String,
        line: Option<usize>,
        path: String,
        message: String,
    },

    /// A problem in an env file (`.env` or `env_file:`).
    #[error("{}: {message}", Place(file, *line))]
    EnvFile {
        file: String,
        line: Option<usize>,
        message: String,
    },

    /// A problem with one service once the files are merged.
    #[error("service {service:?}: {message}")]
    Service { service: String, message: String },

    /// A problem with the project as a whole (name, cycles, top-level entries).
    #[error("{message}")]
    Project { message: String },

    /// Several problems, each on a line of its own (every refused key of a
    /// file is reported at once).
    #[error("{}", Lines(.0))]
    Several(Vec<LoadError>),

    /// The load failed after warnings that explain it (e.g. keys ignored with
    /// `--allow-unknown-keys`); they are kept so that they are not lost.
    #[error("{}{error}", Warned(.warnings))]
    Warned {
        warnings: Vec<String>,
        error: Box<LoadError>,
    },
}

impl LoadError {
    pub(crate) fn service(service: &str, message: impl Into<String>) -> Self {
        Self::Service {
            service: service.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn project(message: impl Into<String>) -> Self {
        Self::Project {
            message: message.into(),
        }
    }
}

impl LoadError {
    /// The error without the warnings that came before it.
    pub fn cause(&self) -> &LoadError {
        match self {
            Self::Warned { error, .. } => error.cause(),
            other => other,
        }
    }
}

struct Lines<'a>(&'a [LoadError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct Warned<'a>(&'a [String]);

impl fmt::Display for Warned<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in self.0 {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

fn at_line_col(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l} column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// `file:line` or just `file`.
struct Place<'a>(&'a str, Option<usize>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(l) => write!(f, "{}:{l}", self.0),
            None => f.write_str(self.0),
        }
    }
}
