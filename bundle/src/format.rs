//! The fixed header: what a reader checks before it reads anything else.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  89 54 42 4E 44 4C 0D 0A  ("\x89TBNDL\r\n")
//!      8     2  format version, big-endian (1)
//!     10     2  flags, big-endian: 0 (reserved for compression)
//!     12     4  seal length, big-endian: 32 (unsigned: SHA-256 of the manifest)
//!                                       or 96 (Ed25519: public key + signature)
//!     16     8  manifest length, big-endian (at most 16 MiB)
//!     24     8  the first 8 bytes of SHA-256 of bytes 0..24
//! ```
//!
//! The magic's first byte has its high bit set and it ends in CR LF, so a
//! copy that went through a 7-bit or line-ending-converting transfer is
//! named as such rather than as a bad signature. The header's own checksum
//! makes every flipped header byte a header error: the lengths it carries
//! are otherwise checked only through what they point at.

use sha2::{Digest, Sha256};

use crate::verify::VerifyError;

pub const MAGIC: [u8; 8] = *b"\x89TBNDL\r\n";
/// The format this crate writes and reads.
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
/// An unsigned bundle's seal: the SHA-256 of the manifest.
pub const SEAL_DIGEST_LEN: u32 = 32;
/// A signed bundle's seal: the Ed25519 public key (32) and signature (64).
pub const SEAL_ED25519_LEN: u32 = 96;
/// The largest manifest a reader accepts (it is read whole into memory).
pub const MAX_MANIFEST_LEN: u64 = 16 << 20;

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub flags: u16,
    pub seal_len: u32,
    pub manifest_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..16].copy_from_slice(&self.seal_len.to_be_bytes());
        b[16..24].copy_from_slice(&self.manifest_len.to_be_bytes());
        let sum = checksum(&b[0..24]);
        b[24..32].copy_from_slice(&sum);
        b
    }

    /// Checks, in order: magic, checksum, version, flags, seal length,
    /// manifest length.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, VerifyError> {
        let bad = |message: String| VerifyError::Header { message };
        if b[0..8] != MAGIC {
            return Err(bad(format!(
                "bytes 0..8 are {}, not the magic of a turtle bundle ({}): not a bundle, or a copy that changed it (a text-mode transfer)",
                hex::encode(&b[0..8]),
                hex::encode(MAGIC)
            )));
        }
        if b[24..32] != checksum(&b[0..24]) {
            return Err(bad(format!(
                "the header's checksum (bytes 24..32) is {}, and bytes 0..24 sum to {}: the header is damaged",
                hex::encode(&b[24..32]),
                hex::encode(checksum(&b[0..24]))
            )));
        }
        let h = Header {
            version: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            seal_len: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            manifest_len: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        };
        if h.version != VERSION {
            return Err(VerifyError::Version { found: h.version });
        }
        if h.flags != 0 {
            return Err(bad(format!(
                "flags (bytes 10..12) are {:#06x}: format {VERSION} defines none",
                h.flags
            )));
        }
        if h.seal_len != SEAL_DIGEST_LEN && h.seal_len != SEAL_ED25519_LEN {
            return Err(bad(format!(
                "seal length (bytes 12..16) is {}: it is {SEAL_DIGEST_LEN} (unsigned) or {SEAL_ED25519_LEN} (signed)",
                h.seal_len
            )));
        }
        if h.manifest_len == 0 || h.manifest_len > MAX_MANIFEST_LEN {
            return Err(bad(format!(
                "manifest length (bytes 16..24) is {}: it is 1 to {MAX_MANIFEST_LEN} bytes",
                h.manifest_len
            )));
        }
        Ok(h)
    }

    /// Where the parts begin.
    pub fn data_start(&self) -> u64 {
        HEADER_LEN as u64 + self.manifest_len + u64::from(self.seal_len)
    }

    pub fn is_signed(&self) -> bool {
        self.seal_len == SEAL_ED25519_LEN
    }
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    Sha256::digest(bytes)[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips() {
        let h = Header {
            version: VERSION,
            flags: 0,
            seal_len: SEAL_ED25519_LEN,
            manifest_len: 1234,
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        assert_eq!(h.data_start(), 32 + 1234 + 96);
    }
}
