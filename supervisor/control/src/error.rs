//! What a caller of [`crate::Control`] gets when an operation fails: the
//! kind (which the socket carries as the HTTP status) and the message.

use serde::{Deserialize, Serialize};

/// A failed operation, the same whether it ran in this process or in the
/// daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ControlError {
    /// No such project, service or device profile (404).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be carried out as given: a plan error, a bad
    /// name, a domain outside the CA's (422).
    #[error("{0}")]
    Invalid(String),
    /// The engine already has something by that name (409).
    #[error("{0}")]
    Conflict(String),
    /// The Docker engine does not answer (503).
    #[error("{0}")]
    EngineUnreachable(String),
    /// The Docker engine refused a call (502).
    #[error("{0}")]
    Engine(String),
    /// Something on this box failed: the store, a file, the CA (500).
    #[error("{0}")]
    Failed(String),
    /// The daemon could not be reached on its socket (client side only).
    #[error("turtle daemon not reachable at {socket}: {detail}")]
    DaemonUnreachable { socket: String, detail: String },
    /// The daemon answered something this client does not understand
    /// (client side only).
    #[error("talking to the turtle daemon: {0}")]
    Protocol(String),
}

impl ControlError {
    /// The HTTP status that carries this kind on the socket.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 422,
            Self::Conflict(_) => 409,
            Self::EngineUnreachable(_) => 503,
            Self::Engine(_) => 502,
            Self::Failed(_) => 500,
            // Never sent by the server; a gateway-style status if one were.
            Self::DaemonUnreachable { .. } | Self::Protocol(_) => 502,
        }
    }

    /// The kind an HTTP status stands for, with the server's message.
    pub fn from_status(status: u16, message: String) -> Self {
        match status {
            404 => Self::NotFound(message),
            422 => Self::Invalid(message),
            409 => Self::Conflict(message),
            503 => Self::EngineUnreachable(message),
            502 => Self::Engine(message),
            _ => Self::Failed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_kind_survives_the_socket() {
        for e in [
            ControlError::NotFound("a".into()),
            ControlError::Invalid("b".into()),
            ControlError::Conflict("c".into()),
            ControlError::EngineUnreachable("d".into()),
            ControlError::Engine("e".into()),
            ControlError::Failed("f".into()),
        ] {
            assert_eq!(ControlError::from_status(e.status(), e.to_string()), e);
        }
    }
}
