//! `ports:`: short entries (`[IP:][HOST:]CONTAINER[/PROTOCOL]`, ranges
//! included) and long ones, mixed in one list.

use serde_norway::Value;

use super::values::scalar as raw_string;
use crate::error::LoadError;
use crate::model::Port;

/// Parses a short port (`[ip:][published:]target[-range][/proto]`), one
/// [`Port`] per container port.
pub fn parse_port(spec: &str) -> Result<Vec<Port>, String> {
    let bad = |why: &str| format!("invalid port {spec:?}: {why}");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if protocol != "tcp" && protocol != "udp" && protocol != "sctp" {
        return Err(bad("the protocol must be tcp, udp or sctp"));
    }
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad("missing ]"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected : after ]"))?;
        (Some(ip.to_string()), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, published, target) = match parts.as_slice() {
        [t] => (None, None, *t),
        [p, t] => (None, Some(*p), *t),
        [i, p, t] if host_ip.is_none() => (Some(i.to_string()), Some(*p), *t),
        _ => return Err(bad("expected [IP:][HOST:]CONTAINER[/PROTOCOL]")),
    };
    let host_ip = host_ip.or(ip).filter(|s| !s.is_empty());
    let published = published.filter(|s| !s.is_empty());
    let range = |s: &str| -> Result<(u16, u16), String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a
            .trim()
            .parse()
            .map_err(|_| bad("ports must be numbers 1-65535"))?;
        let b: u16 = b
            .trim()
            .parse()
            .map_err(|_| bad("ports must be numbers 1-65535"))?;
        if b < a {
            return Err(bad("a range must go up"));
        }
        Ok((a, b))
    };
    let (t0, t1) = range(target)?;
    let pub_range = published.map(range).transpose()?;
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let published = match pub_range {
            None => None,
            Some((p0, p1)) if t0 == t1 => Some(if p0 == p1 {
                p0.to_string()
            } else {
                format!("{p0}-{p1}")
            }),
            Some((p0, p1)) => {
                if p1 - p0 != t1 - t0 {
                    return Err(bad(
                        "the host and container ranges must have the same length",
                    ));
                }
                Some((p0 + i as u16).to_string())
            }
        };
        out.push(Port {
            target: t,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.clone(),
            ..Default::default()
        });
    }
    Ok(out)
}

/// `ports:`, short and long entries mixed.
pub(super) fn ports(service: &str, v: Option<&Value>) -> Result<Vec<Port>, LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(_) => return Err(err("ports: expected a list".into())),
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Mapping(m) => {
                let target = m
                    .get("target")
                    .and_then(raw_string)
                    .and_then(|t| t.parse::<u16>().ok())
                    .ok_or_else(|| err("ports: every long entry needs target: PORT".into()))?;
                out.push(Port {
                    target,
                    published: m
                        .get("published")
                        .and_then(raw_string)
                        .filter(|p| !p.is_empty()),
                    host_ip: m
                        .get("host_ip")
                        .and_then(raw_string)
                        .filter(|p| !p.is_empty()),
                    protocol: m
                        .get("protocol")
                        .and_then(raw_string)
                        .unwrap_or_else(|| "tcp".into()),
                    name: m.get("name").and_then(raw_string),
                    app_protocol: m.get("app_protocol").and_then(raw_string),
                });
            }
            other => {
                let spec = raw_string(other).ok_or_else(|| err("ports: invalid entry".into()))?;
                out.extend(parse_port(&spec).map_err(err)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(target: u16, published: Option<&str>, ip: Option<&str>, proto: &str) -> Port {
        Port {
            target,
            published: published.map(str::to_string),
            host_ip: ip.map(str::to_string),
            protocol: proto.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn short_ports() {
        assert_eq!(parse_port("80").unwrap(), vec![port(80, None, None, "tcp")]);
        assert_eq!(
            parse_port("8080:80").unwrap(),
            vec![port(80, Some("8080"), None, "tcp")]
        );
        assert_eq!(
            parse_port("127.0.0.1:8080:80/udp").unwrap(),
            vec![port(80, Some("8080"), Some("127.0.0.1"), "udp")]
        );
        assert_eq!(
            parse_port("127.0.0.1::80").unwrap(),
            vec![port(80, None, Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            parse_port("[::1]:53:53/udp").unwrap(),
            vec![port(53, Some("53"), Some("::1"), "udp")]
        );
        assert_eq!(
            parse_port("8000-8001:80-81").unwrap(),
            vec![
                port(80, Some("8000"), None, "tcp"),
                port(81, Some("8001"), None, "tcp")
            ]
        );
        assert_eq!(
            parse_port("9000-9010:80").unwrap(),
            vec![port(80, Some("9000-9010"), None, "tcp")]
        );
        assert_eq!(parse_port("3000-3001").unwrap().len(), 2);
        assert!(parse_port("8000-8002:80-81").is_err());
        assert!(parse_port("http").is_err());
        assert!(parse_port("80/icmp").is_err());
        assert!(parse_port("1:2:3:4").is_err());
    }
}
