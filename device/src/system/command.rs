//! External programs (`mkswap`, `swapon`, `swapoff`, `fallocate`, `modprobe`), run
//! with `std::process::Command`: the crate has no unsafe code and no libc calls.

use std::ffi::OsStr;
use std::process::Command;

use super::SystemError;

/// Runs `program args...` with `LC_ALL=C` and returns its standard output; a spawn
/// failure or a non-zero exit is an error carrying the command line and its stderr.
pub(crate) fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String, SystemError> {
    let line = std::iter::once(program.to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SystemError::ProgramMissing {
                    program: program.to_string(),
                }
            } else {
                SystemError::Command {
                    command: line.clone(),
                    detail: e.to_string(),
                }
            }
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let detail = if stderr.is_empty() {
        output.status.to_string()
    } else {
        stderr
    };
    Err(SystemError::Command {
        command: line,
        detail,
    })
}
