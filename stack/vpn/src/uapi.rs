//! The text of WireGuard's cross-platform userspace API (UAPI) as boringtun
//! 0.7.1 speaks it: requests built here, answers parsed here, no IO.
//!
//! A request is `set=1\n` or `get=1\n` then `key=value` lines; a `set` ends
//! with an empty line. Every answer ends with `errno=N\n\n` (`get` puts its
//! `key=value` lines first). Where boringtun differs from the reference
//! protocol:
//! - `get=1` must NOT be followed by the empty line: boringtun answers at
//!   once and would read a following empty line as a second, invalid
//!   request (and answer `errno=5` to it).
//! - `last_handshake_time_sec`/`_nsec` are the time *since* the last
//!   handshake, not a UNIX time.
//! - Setting a peer that exists without `remove=true` panics a worker
//!   thread, so [`set_peers`] only adds keys the device does not have
//!   (see [`crate::peers::diff`]).
//!
//! boringtun reads each request with a fresh buffered reader, so a client
//! must send one request and read its answer before sending the next.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use crate::cidr::Cidr;
use crate::keys::Key;
use crate::peers::{Changes, DevicePeers};

/// The request that reads the device's state.
pub const GET: &str = "get=1\n";

/// Sets the device's private key and UDP port.
pub fn set_device(private_key: &Key, listen_port: u16) -> String {
    format!(
        "set=1\nprivate_key={}\nlisten_port={listen_port}\n\n",
        private_key.to_hex()
    )
}

/// Adds the one peer of a device that joins a server: its key, where it
/// listens, what may come from it, and a keepalive that holds the NAT
/// mapping open (the server never reaches a device first).
pub fn add_server_peer(
    public_key: &Key,
    endpoint: std::net::SocketAddr,
    allowed: Cidr,
    keepalive_secs: u16,
) -> String {
    format!(
        "set=1\npublic_key={}\nendpoint={endpoint}\npersistent_keepalive_interval={keepalive_secs}\nallowed_ip={}\n\n",
        public_key.to_hex(),
        allowed.network()
    )
}

/// The request that applies `changes` (removals first), or None when there
/// is nothing to do.
pub fn set_peers(changes: &Changes) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let mut s = String::from("set=1\n");
    for key in &changes.remove {
        let _ = write!(s, "public_key={}\nremove=true\n", key.to_hex());
    }
    for (key, ips) in &changes.add {
        let _ = writeln!(s, "public_key={}", key.to_hex());
        for ip in ips {
            let _ = writeln!(s, "allowed_ip={ip}");
        }
    }
    s.push('\n');
    Some(s)
}

/// A peer as the device reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevicePeer {
    pub allowed_ips: BTreeSet<Cidr>,
    pub endpoint: Option<String>,
    /// How long ago the current session's handshake was; None without a session.
    pub last_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The device's state, from a `get`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceState {
    pub public_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub peers: BTreeMap<Key, DevicePeer>,
}

impl DeviceState {
    /// The peers with their allowed IPs, the input of [`crate::peers::diff`].
    pub fn device_peers(&self) -> DevicePeers {
        self.peers
            .iter()
            .map(|(k, p)| (*k, p.allowed_ips.clone()))
            .collect()
    }
}

/// An answer that is not what the protocol says.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UapiError {
    #[error("the device's answer does not end with errno=N: {0:?}")]
    NoErrno(String),
    #[error("the device's answer has a line that is not key=value: {0:?}")]
    Line(String),
    #[error("the device's answer has a bad {key}: {value:?}")]
    Value { key: String, value: String },
    #[error("the device refused the request: errno {errno} ({meaning})")]
    Errno { errno: i32, meaning: &'static str },
}

/// Whether `buf` holds a whole answer (it ends with the empty line).
pub fn is_complete(buf: &[u8]) -> bool {
    buf.ends_with(b"\n\n")
}

/// Splits a whole answer into its `key=value` lines and checks the errno.
pub fn parse_answer(text: &str) -> Result<Vec<(&str, &str)>, UapiError> {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let errno = lines
        .pop()
        .and_then(|l| l.strip_prefix("errno="))
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| UapiError::NoErrno(text.to_string()))?;
    if errno != 0 {
        return Err(UapiError::Errno {
            errno,
            meaning: errno_meaning(errno),
        });
    }
    lines
        .into_iter()
        .map(|l| {
            l.split_once('=')
                .ok_or_else(|| UapiError::Line(l.to_string()))
        })
        .collect()
}

/// What boringtun means by the errnos it answers.
fn errno_meaning(errno: i32) -> &'static str {
    match errno {
        5 => "EIO: a request the device does not understand",
        22 => "EINVAL: a key or value the device rejects",
        71 => "EPROTO: a line that is not key=value",
        98 => "EADDRINUSE: the UDP port is taken (by another process or service)",
        _ => "see errno(3)",
    }
}

/// Parses the answer to [`GET`].
pub fn parse_get(text: &str) -> Result<DeviceState, UapiError> {
    let bad = |key: &str, value: &str| UapiError::Value {
        key: key.to_string(),
        value: value.to_string(),
    };
    let mut state = DeviceState::default();
    // The peer being read, and its handshake age (seconds, nanoseconds).
    type Reading = Option<(Key, DevicePeer, Option<u64>, u32)>;
    fn finish(current: Reading, peers: &mut BTreeMap<Key, DevicePeer>) {
        if let Some((k, mut p, secs, nanos)) = current {
            p.last_handshake = secs.map(|s| Duration::new(s, nanos));
            peers.insert(k, p);
        }
    }
    let mut current: Reading = None;
    for (key, value) in parse_answer(text)? {
        if key == "public_key" {
            finish(current.take(), &mut state.peers);
            let k = value.parse().map_err(|_| bad(key, value))?;
            current = Some((k, DevicePeer::default(), None, 0));
            continue;
        }
        let Some((_, p, secs, nanos)) = current.as_mut() else {
            match key {
                "own_public_key" => {
                    state.public_key = Some(value.parse().map_err(|_| bad(key, value))?)
                }
                "listen_port" => {
                    state.listen_port = Some(value.parse().map_err(|_| bad(key, value))?)
                }
                _ => {}
            }
            continue;
        };
        match key {
            "allowed_ip" => {
                let c: Cidr = value.parse().map_err(|_| bad(key, value))?;
                p.allowed_ips.insert(c.network());
            }
            "endpoint" => p.endpoint = Some(value.to_string()),
            "last_handshake_time_sec" => *secs = Some(value.parse().map_err(|_| bad(key, value))?),
            "last_handshake_time_nsec" => *nanos = value.parse().map_err(|_| bad(key, value))?,
            "rx_bytes" => p.rx_bytes = value.parse().map_err(|_| bad(key, value))?,
            "tx_bytes" => p.tx_bytes = value.parse().map_err(|_| bad(key, value))?,
            _ => {}
        }
    }
    finish(current, &mut state.peers);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn ips(list: &[&str]) -> BTreeSet<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_joining_device_adds_the_server_with_endpoint_and_keepalive() {
        let text = add_server_peer(
            &key(1),
            "192.0.2.1:51820".parse().unwrap(),
            "10.99.0.1/32".parse().unwrap(),
            25,
        );
        assert_eq!(
            text,
            format!(
                "set=1\npublic_key={}\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\nallowed_ip=10.99.0.1/32\n\n",
                "01".repeat(32)
            )
        );
    }

    #[test]
    fn set_device_sets_key_and_port() {
        assert_eq!(
            set_device(&key(1), 51820),
            format!(
                "set=1\nprivate_key={}\nlisten_port=51820\n\n",
                "01".repeat(32)
            )
        );
    }

    #[test]
    fn set_peers_removes_first_then_adds() {
        let c = Changes {
            remove: vec![key(1)],
            add: vec![(key(2), ips(&["10.99.0.2/32", "fd00::2/128"]))],
        };
        assert_eq!(
            set_peers(&c).unwrap(),
            format!(
                "set=1\npublic_key={}\nremove=true\npublic_key={}\nallowed_ip=10.99.0.2/32\nallowed_ip=fd00::2/128\n\n",
                "01".repeat(32),
                "02".repeat(32)
            )
        );
        assert_eq!(set_peers(&Changes::default()), None);
    }

    #[test]
    fn get_is_not_followed_by_an_empty_line() {
        assert_eq!(GET, "get=1\n");
    }

    #[test]
    fn parses_a_get_answer() {
        let text = format!(
            "own_public_key={}\nlisten_port=51820\n\
             public_key={}\nendpoint=127.0.0.1:4000\nallowed_ip=10.99.0.2/32\n\
             last_handshake_time_sec=3\nlast_handshake_time_nsec=500\nrx_bytes=92\ntx_bytes=148\n\
             public_key={}\nallowed_ip=10.99.0.3/32\nallowed_ip=10.98.0.0/16\nrx_bytes=0\ntx_bytes=0\n\
             errno=0\n\n",
            "09".repeat(32),
            "01".repeat(32),
            "02".repeat(32),
        );
        assert!(is_complete(text.as_bytes()));
        let s = parse_get(&text).unwrap();
        assert_eq!(s.public_key, Some(key(9)));
        assert_eq!(s.listen_port, Some(51820));
        assert_eq!(
            s.peers[&key(1)],
            DevicePeer {
                allowed_ips: ips(&["10.99.0.2/32"]),
                endpoint: Some("127.0.0.1:4000".into()),
                last_handshake: Some(Duration::new(3, 500)),
                rx_bytes: 92,
                tx_bytes: 148,
            }
        );
        assert_eq!(s.peers[&key(2)].last_handshake, None);
        assert_eq!(
            s.device_peers(),
            DevicePeers::from([
                (key(1), ips(&["10.99.0.2/32"])),
                (key(2), ips(&["10.99.0.3/32", "10.98.0.0/16"])),
            ])
        );
    }

    #[test]
    fn an_empty_device_parses() {
        let s = parse_get("listen_port=1\nerrno=0\n\n").unwrap();
        assert!(s.peers.is_empty());
        assert_eq!(s.public_key, None);
    }

    #[test]
    fn errors_name_the_errno() {
        let e = parse_answer("errno=98\n\n").unwrap_err();
        assert!(e.to_string().contains("EADDRINUSE"), "{e}");
        assert!(matches!(parse_answer("errno=0\n\n"), Ok(v) if v.is_empty()));
        assert!(matches!(
            parse_answer("hello\n\n"),
            Err(UapiError::NoErrno(_))
        ));
        assert!(matches!(
            parse_answer("x\nerrno=0\n\n"),
            Err(UapiError::Line(_))
        ));
        assert!(matches!(
            parse_get("public_key=zz\nerrno=0\n\n"),
            Err(UapiError::Value { .. })
        ));
        assert!(!is_complete(b"errno=0\n"));
    }
}
