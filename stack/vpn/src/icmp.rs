//! IPv4 ICMP echo packets, built and parsed by hand: the test peer has no
//! kernel stack behind its tunnel, so it writes its own pings and answers.

use std::net::Ipv4Addr;

const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;
const PROTO_ICMP: u8 = 1;

/// An echo request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub kind: EchoKind,
    pub id: u16,
    pub seq: u16,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoKind {
    Request,
    Reply,
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo message without the IP header (what a raw ICMP socket sends).
pub fn icmp_message(kind: EchoKind, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(8 + payload.len());
    m.push(match kind {
        EchoKind::Request => ECHO_REQUEST,
        EchoKind::Reply => ECHO_REPLY,
    });
    m.push(0); // code
    m.extend_from_slice(&[0, 0]); // checksum, filled below
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

impl Echo {
    /// The whole IPv4 packet (20-byte header, DF set, TTL 64).
    pub fn to_packet(&self) -> Vec<u8> {
        let icmp = icmp_message(self.kind, self.id, self.seq, &self.payload);
        let total = (20 + icmp.len()) as u16;
        let mut p = Vec::with_capacity(total as usize);
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&self.seq.to_be_bytes()); // identification
        p.extend_from_slice(&[0x40, 0]); // don't fragment
        p.extend_from_slice(&[64, PROTO_ICMP, 0, 0]); // TTL, protocol, checksum
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        let sum = checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&icmp);
        p
    }

    /// Parses an IPv4 packet; None unless it is a well-formed echo request
    /// or reply (both checksums right).
    pub fn parse(packet: &[u8]) -> Option<Echo> {
        let (&vihl, _) = packet.split_first()?;
        let ihl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || ihl < 20 || packet.len() < ihl + 8 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if total < ihl + 8 || total > packet.len() || packet[9] != PROTO_ICMP {
            return None;
        }
        if checksum(&packet[..ihl]) != 0 {
            return None;
        }
        let icmp = &packet[ihl..total];
        if checksum(icmp) != 0 || icmp[1] != 0 {
            return None;
        }
        let kind = match icmp[0] {
            ECHO_REQUEST => EchoKind::Request,
            ECHO_REPLY => EchoKind::Reply,
            _ => return None,
        };
        let addr =
            |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
        Some(Echo {
            src: addr(12),
            dst: addr(16),
            kind,
            id: u16::from_be_bytes([icmp[4], icmp[5]]),
            seq: u16::from_be_bytes([icmp[6], icmp[7]]),
            payload: icmp[8..].to_vec(),
        })
    }

    /// The reply to this request: addresses swapped, same id, seq and payload.
    pub fn reply(&self) -> Echo {
        Echo {
            src: self.dst,
            dst: self.src,
            kind: EchoKind::Reply,
            id: self.id,
            seq: self.seq,
            payload: self.payload.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Echo {
        Echo {
            src: Ipv4Addr::new(10, 99, 0, 2),
            dst: Ipv4Addr::new(10, 99, 0, 1),
            kind: EchoKind::Request,
            id: 0x1234,
            seq: 7,
            payload: b"turtle".to_vec(),
        }
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&[0xab]), !0xab00);
    }

    #[test]
    fn a_packet_parses_back_to_itself() {
        let e = request();
        let p = e.to_packet();
        assert_eq!(p.len(), 20 + 8 + 6);
        assert_eq!(Echo::parse(&p), Some(e.clone()));
        let r = e.reply();
        assert_eq!(
            Echo::parse(&r.to_packet()),
            Some(Echo {
                src: e.dst,
                dst: e.src,
                kind: EchoKind::Reply,
                ..e
            })
        );
    }

    #[test]
    fn matches_a_known_packet() {
        // Written out by hand, both checksums computed independently (a
        // few lines of Python after RFC 1071).
        let known = [
            0x45, 0x00, 0x00, 0x20, 0x00, 0x07, 0x40, 0x00, 0x40, 0x01, 0x26, 0x0e, 0x0a, 0x63,
            0x00, 0x02, 0x0a, 0x63, 0x00, 0x01, 0x00, 0x00, 0x04, 0xdc, 0x12, 0x34, 0x00, 0x07,
            0x74, 0x74, 0x74, 0x74,
        ];
        let e = Echo {
            kind: EchoKind::Reply,
            payload: b"tttt".to_vec(),
            ..request()
        };
        assert_eq!(e.to_packet(), known);
    }

    #[test]
    fn rejects_corrupt_or_other_packets() {
        let mut p = request().to_packet();
        assert!(Echo::parse(&p[..20]).is_none(), "truncated");
        p[25] ^= 1;
        assert!(Echo::parse(&p).is_none(), "bad icmp checksum");
        let mut p = request().to_packet();
        p[9] = 17;
        assert!(Echo::parse(&p).is_none(), "not icmp");
        let mut p = request().to_packet();
        p[0] = 0x60;
        assert!(Echo::parse(&p).is_none(), "not ipv4");
        let mut p = request().to_packet();
        p[20] = 3; // destination unreachable
        let sum = checksum(&[&p[20..22], &[0, 0], &p[24..]].concat());
        p[22..24].copy_from_slice(&sum.to_be_bytes());
        assert!(Echo::parse(&p).is_none(), "not an echo");
    }
}
