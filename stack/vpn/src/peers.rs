//! The peer set: what the api wants (`GET /v1/vpn/peers`), and the changes
//! that bring the device there.
//!
//! The changes are a diff, never `replace_peers`: a peer that stays keeps its
//! live session. boringtun cannot modify a peer in place (it panics its
//! worker thread), so a peer whose allowed IPs changed is removed and added
//! again in the same request; that peer handshakes anew, the others are not
//! touched.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::cidr::Cidr;
use crate::keys::Key;

/// One wanted peer: its allowed IPs (networks, host bits cleared) and the
/// device it belongs to (for logs and the health report).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerSpec {
    pub device: Option<String>,
    pub allowed_ips: BTreeSet<Cidr>,
}

/// The wanted peers by public key.
pub type PeerSet = BTreeMap<Key, PeerSpec>;

/// The peers a device has, by public key, with their allowed IPs.
pub type DevicePeers = BTreeMap<Key, BTreeSet<Cidr>>;

/// The api's list as it comes over the wire.
#[derive(Debug, Deserialize)]
struct ApiPeers {
    peers: Vec<ApiPeer>,
}

#[derive(Debug, Deserialize)]
struct ApiPeer {
    #[serde(default)]
    device: Option<String>,
    public_key: String,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

/// The api's answer parsed: the peers, and what was wrong with entries that
/// were skipped (a bad entry must not take the other peers down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub peers: PeerSet,
    pub warnings: Vec<String>,
}

/// Parses the body of `GET /v1/vpn/peers`. `own` is the server's own public
/// key: a peer with it is skipped (a device cannot be the server).
pub fn parse_api_peers(body: &[u8], own: &Key) -> Result<Parsed, serde_json::Error> {
    let list: ApiPeers = serde_json::from_slice(body)?;
    let mut peers = PeerSet::new();
    let mut warnings = Vec::new();
    for p in list.peers {
        let who = p.device.as_deref().unwrap_or("(no device)");
        let key: Key = match p.public_key.parse() {
            Ok(k) => k,
            Err(e) => {
                warnings.push(format!("peer of device {who} skipped: public_key: {e}"));
                continue;
            }
        };
        if key == *own {
            warnings.push(format!(
                "peer of device {who} skipped: its public key is the server's own"
            ));
            continue;
        }
        let mut ips = BTreeSet::new();
        let mut bad = None;
        for ip in &p.allowed_ips {
            match ip.parse::<Cidr>() {
                Ok(c) => {
                    ips.insert(c.network());
                }
                Err(e) => bad = Some(e),
            }
        }
        if let Some(e) = bad {
            warnings.push(format!("peer of device {who} skipped: allowed_ips: {e}"));
            continue;
        }
        match peers.get_mut(&key) {
            Some(spec) => {
                warnings.push(format!(
                    "public key {key} is listed more than once (device {who}); its allowed IPs are merged"
                ));
                spec.allowed_ips.extend(ips);
            }
            None => {
                peers.insert(
                    key,
                    PeerSpec {
                        device: p.device,
                        allowed_ips: ips,
                    },
                );
            }
        }
    }
    Ok(Parsed { peers, warnings })
}

/// What to do to the device: remove these peers, then add these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub remove: Vec<Key>,
    pub add: Vec<(Key, BTreeSet<Cidr>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

/// The changes that turn `actual` into `wanted`. Applying them and diffing
/// again gives no changes.
pub fn diff(wanted: &PeerSet, actual: &DevicePeers) -> Changes {
    let mut changes = Changes::default();
    for (key, ips) in actual {
        match wanted.get(key) {
            None => changes.remove.push(*key),
            Some(spec) if spec.allowed_ips != *ips => {
                changes.remove.push(*key);
                changes.add.push((*key, spec.allowed_ips.clone()));
            }
            Some(_) => {}
        }
    }
    for (key, spec) in wanted {
        if !actual.contains_key(key) {
            changes.add.push((*key, spec.allowed_ips.clone()));
        }
    }
    changes
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

    fn spec(list: &[&str]) -> PeerSpec {
        PeerSpec {
            device: None,
            allowed_ips: ips(list),
        }
    }

    fn apply(actual: &mut DevicePeers, c: &Changes) {
        for k in &c.remove {
            actual.remove(k);
        }
        for (k, ips) in &c.add {
            assert!(actual.insert(*k, ips.clone()).is_none(), "added twice");
        }
    }

    #[test]
    fn parses_the_contract_shape() {
        let body = format!(
            r#"{{"peers":[{{"device":"d-1","public_key":"{}","allowed_ips":["10.99.0.2/32"]}}]}}"#,
            key(1).to_base64()
        );
        let parsed = parse_api_peers(body.as_bytes(), &key(9)).unwrap();
        assert!(parsed.warnings.is_empty());
        assert_eq!(
            parsed.peers,
            PeerSet::from([(
                key(1),
                PeerSpec {
                    device: Some("d-1".into()),
                    allowed_ips: ips(&["10.99.0.2/32"]),
                },
            )])
        );
    }

    #[test]
    fn bad_entries_are_skipped_with_a_reason_and_the_rest_kept() {
        let body = format!(
            r#"{{"peers":[
                {{"device":"bad-key","public_key":"xyz","allowed_ips":["10.99.0.2/32"]}},
                {{"device":"bad-ip","public_key":"{}","allowed_ips":["10.99.0.300/32"]}},
                {{"device":"server","public_key":"{}","allowed_ips":["10.99.0.4/32"]}},
                {{"device":"good","public_key":"{}","allowed_ips":["10.99.0.5/24"]}}
            ]}}"#,
            key(2).to_base64(),
            key(9).to_base64(),
            key(3).to_hex(),
        );
        let parsed = parse_api_peers(body.as_bytes(), &key(9)).unwrap();
        assert_eq!(parsed.peers.keys().collect::<Vec<_>>(), [&key(3)]);
        // Host bits are cleared, as boringtun stores them.
        assert_eq!(parsed.peers[&key(3)].allowed_ips, ips(&["10.99.0.0/24"]));
        assert_eq!(parsed.warnings.len(), 3, "{:?}", parsed.warnings);
        assert!(
            parsed.warnings[0].contains("bad-key") && parsed.warnings[0].contains("public_key")
        );
        assert!(
            parsed.warnings[1].contains("bad-ip") && parsed.warnings[1].contains("allowed_ips")
        );
        assert!(parsed.warnings[2].contains("server's own"));
    }

    #[test]
    fn a_duplicate_key_merges_and_says_so() {
        let k = key(4).to_base64();
        let body = format!(
            r#"{{"peers":[{{"public_key":"{k}","allowed_ips":["10.99.0.2/32"]}},
                          {{"public_key":"{k}","allowed_ips":["10.99.0.3/32"]}}]}}"#
        );
        let parsed = parse_api_peers(body.as_bytes(), &key(9)).unwrap();
        assert_eq!(
            parsed.peers[&key(4)].allowed_ips,
            ips(&["10.99.0.2/32", "10.99.0.3/32"])
        );
        assert_eq!(parsed.warnings.len(), 1);
    }

    #[test]
    fn not_the_expected_json_is_an_error() {
        assert!(parse_api_peers(b"[]", &key(9)).is_err());
        assert!(parse_api_peers(b"<html>", &key(9)).is_err());
    }

    #[test]
    fn diff_adds_removes_and_replaces_changed_peers() {
        let wanted = PeerSet::from([
            (key(1), spec(&["10.99.0.2/32"])),
            (key(2), spec(&["10.99.0.3/32"])),
            (key(3), spec(&["10.99.0.9/32"])),
        ]);
        let mut actual = DevicePeers::from([
            (key(1), ips(&["10.99.0.2/32"])),
            (key(3), ips(&["10.99.0.4/32"])),
            (key(4), ips(&["10.99.0.5/32"])),
        ]);
        let c = diff(&wanted, &actual);
        assert_eq!(c.remove, [key(3), key(4)]);
        assert_eq!(
            c.add,
            [
                (key(3), ips(&["10.99.0.9/32"])),
                (key(2), ips(&["10.99.0.3/32"]))
            ]
        );
        apply(&mut actual, &c);
        assert!(diff(&wanted, &actual).is_empty(), "idempotent");
    }

    #[test]
    fn unchanged_peers_are_left_alone() {
        let wanted = PeerSet::from([(key(1), spec(&["10.99.0.2/32"]))]);
        let actual = DevicePeers::from([(key(1), ips(&["10.99.0.2/32"]))]);
        assert!(diff(&wanted, &actual).is_empty());
        assert_eq!(
            diff(&PeerSet::new(), &actual),
            Changes {
                remove: vec![key(1)],
                add: vec![]
            }
        );
    }
}
