//! Issuing leaves: the names a request may hold, and the signed certificate.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::authority::Authority;
use crate::inspect::{self, CertFacts};
use crate::{Error, names, profile, timefmt};

/// Leaves start this long before the moment they are made, for clocks on the
/// network that run a little behind.
const LEAF_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A freshly issued leaf with its key.
#[derive(Clone)]
pub struct Leaf {
    /// The leaf certificate alone.
    pub cert_pem: String,
    /// Its private key (PKCS#8, `BEGIN PRIVATE KEY`).
    pub key_pem: String,
    /// Leaf, then intermediate: what a server sends.
    pub chain_pem: String,
    /// Leaf, intermediate, root.
    pub fullchain_pem: String,
    /// What the certificate says.
    pub info: LeafInfo,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What a leaf certificate says, plus where it stands. In JSON, times are RFC 3339
/// strings in UTC (`"2025-06-01T12:00:00Z"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeafInfo {
    /// The id it is stored under (`leaves/<id>`); empty for [`Authority::issue`].
    pub id: String,
    /// The subject, such as `CN=api.vm.local`.
    pub subject: String,
    /// The DNS names (subject alternative names).
    pub names: Vec<String>,
    /// The ip addresses (subject alternative names).
    pub ips: Vec<IpAddr>,
    /// SHA-256 of the certificate (DER), uppercase hex pairs joined by ':'.
    pub fingerprint: String,
    /// The serial number, uppercase hex pairs joined by ':'.
    pub serial: String,
    #[serde(with = "timefmt::rfc3339")]
    pub not_before: SystemTime,
    #[serde(with = "timefmt::rfc3339")]
    pub not_after: SystemTime,
    /// When [`Authority::ensure_leaf`] replaces it: `renew_at` of the configuration
    /// into its lifetime. For a provided leaf, its end (Turtle never replaces it).
    #[serde(with = "timefmt::rfc3339")]
    pub renew_at: SystemTime,
    /// Brought by the operator ([`Authority::import_leaf`]), not issued by Turtle.
    pub provided: bool,
}

impl LeafInfo {
    pub(crate) fn new(id: &str, cert: &CertFacts, renew_at: SystemTime, provided: bool) -> Self {
        LeafInfo {
            id: id.to_string(),
            subject: cert.subject.clone(),
            names: cert.names.clone(),
            ips: cert.ips.clone(),
            fingerprint: cert.fingerprint.clone(),
            serial: cert.serial.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            renew_at,
            provided,
        }
    }
}

impl Authority {
    /// Issues a leaf for DNS names and ip addresses, signed by the intermediate: EKU
    /// serverAuth and clientAuth, key usage digitalSignature, every name and address
    /// as a subject alternative name, CN the first name (or address), a random
    /// serial, valid from `now` - 5 minutes for the configured leaf lifetime (never
    /// past the intermediate's end). Nothing is stored.
    ///
    /// Names are made lowercase and duplicates dropped. A wildcard (`*.apps.vm.local`)
    /// is taken. Names outside the domain and addresses outside the permitted ranges
    /// are an error that lists them all (callers filter addresses they cannot know to
    /// be permitted, such as a host's public address).
    pub fn issue(&self, names: &[String], ips: &[IpAddr], now: SystemTime) -> Result<Leaf, Error> {
        let (names, ips) = self.check_request(names, ips)?;
        self.sign_leaf(&names, &ips, now)
    }

    /// The canonical names and addresses of a request, or why the CA cannot issue it.
    pub(crate) fn check_request(
        &self,
        names: &[String],
        ips: &[IpAddr],
    ) -> Result<(Vec<String>, Vec<IpAddr>), Error> {
        let mut canonical: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = names::canonical_name(name)?;
            if !canonical.contains(&name) {
                canonical.push(name);
            }
        }
        let outside: Vec<String> = canonical
            .iter()
            .filter(|n| !names::in_domain(n, self.domain()))
            .cloned()
            .collect();
        if !outside.is_empty() {
            return Err(Error::NamesOutsideDomain {
                names: outside,
                domain: self.domain().to_string(),
            });
        }
        let mut addresses: Vec<IpAddr> = Vec::with_capacity(ips.len());
        for ip in ips {
            if !addresses.contains(ip) {
                addresses.push(*ip);
            }
        }
        let outside: Vec<IpAddr> = addresses
            .iter()
            .filter(|ip| !self.permitted_ips().iter().any(|net| net.contains(ip)))
            .copied()
            .collect();
        if !outside.is_empty() {
            return Err(Error::IpsOutsideRanges {
                ips: outside,
                permitted: self
                    .permitted_ips()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        if canonical.is_empty() && addresses.is_empty() {
            return Err(Error::NoNames);
        }
        Ok((canonical, addresses))
    }

    /// Signs a leaf for names and addresses already checked.
    pub(crate) fn sign_leaf(
        &self,
        names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
    ) -> Result<Leaf, Error> {
        let now = timefmt::whole_seconds(now);
        let not_after = (now + self.leaf_lifetime).min(self.intermediate.not_after);
        if not_after <= now {
            return Err(Error::IntermediateExpired {
                not_after: timefmt::format(self.intermediate.not_after),
            });
        }
        let params = profile::leaf(names, ips, now - LEAF_BACKDATE, not_after)?;
        let key = profile::new_key("leaf")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| Error::sign("leaf", e))?;
        let facts = inspect::parse(cert.der()).map_err(|reason| Error::Sign {
            what: "leaf",
            reason,
        })?;
        let renew_at = self.renewal_point(now, &facts);
        let cert_pem = inspect::to_pem(cert.der());
        let chain_pem = inspect::concat(&[&cert_pem, &self.intermediate_pem]);
        let fullchain_pem = inspect::concat(&[&chain_pem, &self.root_pem]);
        Ok(Leaf {
            cert_pem,
            key_pem: key.serialize_pem(),
            chain_pem,
            fullchain_pem,
            info: LeafInfo::new("", &facts, renew_at, false),
        })
    }

    /// `renew_at` of the way from issuance to the certificate's end. Counted
    /// from `issued`, not from `not_before`: the backdating is slack for
    /// clocks, not lifetime, and with a short lifetime it would put the
    /// renewal point before issuance (renewing forever).
    fn renewal_point(&self, issued: SystemTime, cert: &CertFacts) -> SystemTime {
        let lifetime = cert.not_after.duration_since(issued).unwrap_or_default();
        timefmt::whole_seconds(issued + lifetime.mul_f64(self.renew_fraction))
    }
}
