//! How a Docker engine error (bollard's) reads, and whether it means the
//! engine's socket could not be used at all. Shared by the supervisor's
//! engine and the stack's builder, which both talk to the engine and must
//! tell "the engine is gone" (say which socket, wait for it) from "the
//! engine refused this" (say why).

use std::io;

use bollard::errors::Error as BollardError;

/// The error and its sources, `: `-joined, without repeating a source its
/// parent already quotes.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// True when the error means the socket could not be used at all.
pub fn is_connection_error(e: &BollardError) -> bool {
    // bollard's wrappers are `#[error(transparent)]`: their `source()` skips
    // the wrapped error itself, so start the walk at the wrapped error.
    match e {
        BollardError::SocketNotFoundError(_) => true,
        BollardError::HyperLegacyError { err } => err.is_connect() || io_failure_in_chain(err),
        BollardError::HyperResponseError { err } => io_failure_in_chain(err),
        BollardError::IOError { err } => io_failure_in_chain(err),
        e => io_failure_in_chain(e),
    }
}

/// True when `e` or one of its sources is an IO error of a broken socket.
fn io_failure_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src = Some(e);
    while let Some(c) = src {
        if let Some(io) = c.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        src = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_a_connection_error_and_a_refusal_is_not() {
        let gone = BollardError::IOError {
            err: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        };
        assert!(is_connection_error(&gone));
        let refused = BollardError::DockerResponseServerError {
            status_code: 404,
            message: "no such image".into(),
        };
        assert!(!is_connection_error(&refused));
        assert_eq!(error_chain(&refused), refused.to_string());
    }
}
