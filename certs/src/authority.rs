//! The CA itself: creating it once, importing an operator's root, opening it again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{CertifiedIssuer, Issuer, KeyPair, PublicKeyData};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::config::{CaConfig, IpNet};
use crate::fs::{self, DirLock, NewFile, PRIVATE, PUBLIC};
use crate::inspect::{self, CertFacts};
use crate::{Error, profile, timefmt};

pub(crate) const ROOT_PEM: &str = "root.pem";
pub(crate) const ROOT_KEY: &str = "root.key";
pub(crate) const INTERMEDIATE_PEM: &str = "intermediate.pem";
pub(crate) const INTERMEDIATE_KEY: &str = "intermediate.key";
pub(crate) const META: &str = "ca.json";
pub(crate) const LEAVES: &str = "leaves";

/// CA certificates start this long before the moment they are made, for clocks on
/// the network that run a little behind.
const CA_BACKDATE: Duration = Duration::from_secs(60 * 60);

/// `ca.json`: what the certificates do not say, or not plainly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub domain: String,
    pub permitted_ips: Vec<IpNet>,
    #[serde(with = "timefmt::rfc3339")]
    pub created: SystemTime,
    /// The root is the operator's (`Authority::import`), not Turtle's.
    pub imported: bool,
}

/// A CA on disk, loaded: the root certificate and the intermediate with its key,
/// which signs every leaf. The root's key stays on disk.
///
/// `Authority` is `Send + Sync`; share it with an `Arc`. Changes on disk (new
/// leaves) are ordered by a file lock in the CA directory, so several processes may
/// hold an `Authority` for the same directory.
pub struct Authority {
    pub(crate) dir: PathBuf,
    pub(crate) meta: Meta,
    pub(crate) root: CertFacts,
    pub(crate) root_pem: String,
    pub(crate) intermediate: CertFacts,
    pub(crate) intermediate_pem: String,
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) leaf_lifetime: Duration,
    pub(crate) renew_fraction: f64,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("dir", &self.dir)
            .field("domain", &self.meta.domain)
            .field("imported", &self.meta.imported)
            .field("root", &self.root.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Opens the CA stored in `dir`, or creates it there once.
    ///
    /// A new CA is a self-signed root and an intermediate signed by it, both ECDSA
    /// P-256 and both name-constrained to `cfg.domain` (the domain and every name under
    /// it) and `cfg.permitted_ips`. `dir` is created with mode 0700 when missing (an
    /// existing directory keeps its permissions); keys are 0600. Creation runs under an
    /// exclusive lock on `dir/.lock`, so a daemon and a CLI starting at once make one
    /// CA; `root.pem` is written last, so a CA exists exactly when `root.pem` does.
    ///
    /// Opening never changes the CA. A stored CA for another domain, or with other
    /// permitted ranges, is an error that names both and the way out.
    pub fn open_or_create(dir: &Path, cfg: &CaConfig, now: SystemTime) -> Result<Self, Error> {
        let domain = cfg.validate()?;
        fs::ensure_dir(dir, 0o700)?;
        let _lock = DirLock::acquire(dir)?;
        if !exists(&dir.join(ROOT_PEM))? {
            let tag = hex::encode(profile::random::<4>());
            let not_before = timefmt::whole_seconds(now) - CA_BACKDATE;
            let not_after = timefmt::whole_seconds(now) + cfg.root_lifetime;
            let params = profile::root(&domain, &cfg.permitted_ips, &tag, not_before, not_after);
            let root = CertifiedIssuer::self_signed(params, profile::new_key("root")?)
                .map_err(|e| Error::sign("root", e))?;
            let root_der = root.der().to_vec();
            let root_key_pem = root.key().serialize_pem();
            let new = NewCa {
                domain: &domain,
                cfg,
                tag: &tag,
                root_der: &root_der,
                root_not_after: not_after,
                root_key_pem: &root_key_pem,
                imported: false,
                now,
            };
            new.write(dir, &root)?;
        }
        Self::load(dir, &domain, cfg)
    }

    /// Brings your own CA: the operator's CA certificate and key (PEM; the key in
    /// PKCS#8, `BEGIN PRIVATE KEY`) take the place of the root, and Turtle creates its
    /// own name-constrained intermediate under it.
    ///
    /// Refused when `dir` already holds a CA (unless its root is this very certificate:
    /// then the stored CA is opened), when the certificate is not a CA or has expired,
    /// and when the key does not belong to the certificate.
    pub fn import(
        dir: &Path,
        cfg: &CaConfig,
        ca_cert_pem: &str,
        ca_key_pem: &str,
        now: SystemTime,
    ) -> Result<Self, Error> {
        let domain = cfg.validate()?;
        let invalid = |reason: String| Error::InvalidCaCert { reason };
        let ca = inspect::parse_pem_single(ca_cert_pem).map_err(invalid)?;
        if !ca.is_ca {
            return Err(invalid(
                "it is not a CA certificate (its basic constraints do not say CA:TRUE); give the \
                 certificate of the CA, not one of a server"
                    .into(),
            ));
        }
        if !ca.may_sign_certs {
            return Err(invalid(
                "its key usage does not allow signing certificates (keyCertSign)".into(),
            ));
        }
        if now >= ca.not_after {
            return Err(invalid(format!(
                "it expired at {}",
                timefmt::format(ca.not_after)
            )));
        }
        let key = ca_key(ca_key_pem)?;
        if key.der_bytes() != ca.public_key.as_slice() {
            return Err(Error::KeyMismatch {
                what: "the CA certificate".into(),
            });
        }

        fs::ensure_dir(dir, 0o700)?;
        let _lock = DirLock::acquire(dir)?;
        let root_path = dir.join(ROOT_PEM);
        if exists(&root_path)? {
            let stored = inspect::parse_pem_single(&fs::read(&root_path)?)
                .map_err(|e| Error::corrupt(&root_path, e))?;
            if stored.der != ca.der {
                return Err(Error::CaExists {
                    dir: dir.to_path_buf(),
                    fingerprint: stored.fingerprint,
                });
            }
            return Self::load(dir, &domain, cfg);
        }

        let root_key_pem = key.serialize_pem();
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(ca.der.as_slice()), key)
            .map_err(|e| invalid(format!("rcgen cannot use it ({e})")))?;
        let new = NewCa {
            domain: &domain,
            cfg,
            tag: &ca.fingerprint.replace(':', "")[..8].to_ascii_lowercase(),
            root_der: &ca.der,
            root_not_after: ca.not_after,
            root_key_pem: &root_key_pem,
            imported: true,
            now,
        };
        new.write(dir, &issuer)?;
        Self::load(dir, &domain, cfg)
    }

    /// Loads the stored CA; the caller holds the lock or knows the CA is complete.
    fn load(dir: &Path, domain: &str, cfg: &CaConfig) -> Result<Self, Error> {
        let meta_path = dir.join(META);
        let meta: Meta = match fs::read_optional(&meta_path)? {
            Some(text) => serde_json::from_str(&text).map_err(|e| Error::corrupt(&meta_path, e))?,
            None => return Err(incomplete(dir, META)),
        };
        if meta.domain != domain {
            return Err(Error::DomainMismatch {
                dir: dir.to_path_buf(),
                stored: meta.domain,
                requested: domain.to_string(),
            });
        }
        if sorted(&meta.permitted_ips) != sorted(&cfg.permitted_ips) {
            return Err(Error::IpRangesMismatch {
                dir: dir.to_path_buf(),
                stored: strings(&meta.permitted_ips),
                requested: strings(&cfg.permitted_ips),
            });
        }
        let (root, root_pem) = read_cert(dir, ROOT_PEM)?;
        if !exists(&dir.join(ROOT_KEY))? {
            return Err(incomplete(dir, ROOT_KEY));
        }
        let (intermediate, intermediate_pem) = read_cert(dir, INTERMEDIATE_PEM)?;
        let key_path = dir.join(INTERMEDIATE_KEY);
        let key_pem =
            fs::read_optional(&key_path)?.ok_or_else(|| incomplete(dir, INTERMEDIATE_KEY))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::corrupt(&key_path, e))?;
        if key.der_bytes() != intermediate.public_key.as_slice() {
            return Err(Error::corrupt(
                &key_path,
                format!("it is not the key of {INTERMEDIATE_PEM}"),
            ));
        }
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(intermediate.der.as_slice()), key)
                .map_err(|e| Error::corrupt(dir.join(INTERMEDIATE_PEM), e))?;
        Ok(Authority {
            dir: dir.to_path_buf(),
            meta,
            root,
            root_pem,
            intermediate,
            intermediate_pem,
            issuer,
            leaf_lifetime: cfg.leaf_lifetime,
            renew_fraction: cfg.renew_at,
        })
    }

    /// The root certificate (PEM): what clients trust.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The intermediate certificate (PEM): servers send it after their leaf.
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// SHA-256 of the root certificate (DER), as uppercase hex pairs joined by ':'
    /// (`AB:CD:…`), the form browsers show.
    pub fn fingerprint(&self) -> String {
        self.root.fingerprint.clone()
    }

    /// The domain the CA is constrained to.
    pub fn domain(&self) -> &str {
        &self.meta.domain
    }

    /// The ip ranges the CA is constrained to.
    pub fn permitted_ips(&self) -> &[IpNet] {
        &self.meta.permitted_ips
    }

    /// Whether the root is the operator's (see [`Authority::import`]).
    pub fn imported(&self) -> bool {
        self.meta.imported
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The files of a CA about to be created.
struct NewCa<'a> {
    domain: &'a str,
    cfg: &'a CaConfig,
    tag: &'a str,
    root_der: &'a [u8],
    root_not_after: SystemTime,
    root_key_pem: &'a str,
    imported: bool,
    now: SystemTime,
}

impl NewCa<'_> {
    /// Creates the intermediate under `root` and writes every file, `root.pem` last
    /// (and only once the others are on disk): its presence marks a complete CA.
    fn write(&self, dir: &Path, root: &Issuer<'_, KeyPair>) -> Result<(), Error> {
        let not_before = timefmt::whole_seconds(self.now) - CA_BACKDATE;
        let not_after = (timefmt::whole_seconds(self.now) + self.cfg.intermediate_lifetime)
            .min(self.root_not_after);
        let params = profile::intermediate(
            self.domain,
            &self.cfg.permitted_ips,
            self.tag,
            not_before,
            not_after,
        );
        let key = profile::new_key("intermediate")?;
        let cert = params
            .signed_by(&key, root)
            .map_err(|e| Error::sign("intermediate", e))?;
        check_chains(cert.der(), self.root_der)?;
        let meta = Meta {
            domain: self.domain.to_string(),
            permitted_ips: self.cfg.permitted_ips.clone(),
            created: timefmt::whole_seconds(self.now),
            imported: self.imported,
        };
        let meta = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
        let key_pem = key.serialize_pem();
        let cert_pem = inspect::to_pem(cert.der());
        fs::replace_files(
            dir,
            &[
                NewFile {
                    name: INTERMEDIATE_KEY,
                    contents: key_pem.as_bytes(),
                    mode: PRIVATE,
                },
                NewFile {
                    name: INTERMEDIATE_PEM,
                    contents: cert_pem.as_bytes(),
                    mode: PUBLIC,
                },
                NewFile {
                    name: ROOT_KEY,
                    contents: self.root_key_pem.as_bytes(),
                    mode: PRIVATE,
                },
                NewFile {
                    name: META,
                    contents: &meta,
                    mode: PUBLIC,
                },
            ],
        )?;
        let root_pem = inspect::to_pem(self.root_der);
        fs::replace_files(
            dir,
            &[NewFile {
                name: ROOT_PEM,
                contents: root_pem.as_bytes(),
                mode: PUBLIC,
            }],
        )
    }
}

/// The intermediate's issuer name must be the root's subject byte for byte, or no
/// client finds the root. rcgen rebuilds the name of an imported root; a name it
/// cannot rebuild exactly (a repeated attribute, say) is caught here.
fn check_chains(intermediate_der: &[u8], root_der: &[u8]) -> Result<(), Error> {
    let parse = |der| {
        x509_parser::parse_x509_certificate(der)
            .map(|(_, c)| c)
            .map_err(|e| Error::Sign {
                what: "intermediate",
                reason: e.to_string(),
            })
    };
    let (intermediate, root) = (parse(intermediate_der)?, parse(root_der)?);
    if intermediate.issuer().as_raw() != root.subject().as_raw() {
        return Err(Error::InvalidCaCert {
            reason: format!(
                "its subject name ({}) cannot be copied exactly into the intermediate; use a CA \
                 whose subject has each attribute once",
                root.subject()
            ),
        });
    }
    Ok(())
}

/// The operator's CA key, which rcgen (with ring) takes in PKCS#8 only.
fn ca_key(pem: &str) -> Result<KeyPair, Error> {
    let invalid = |reason: String| Error::InvalidKey {
        what: "the CA".into(),
        reason,
    };
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| invalid(format!("no private key in the PEM ({e})")))?;
    let convert = "convert it with `openssl pkcs8 -topk8 -nocrypt -in ca.key -out ca-pkcs8.key`";
    match &der {
        PrivateKeyDer::Pkcs8(_) => {}
        PrivateKeyDer::Pkcs1(_) => {
            return Err(invalid(format!(
                "it is an RSA key in PKCS#1 form; {convert}"
            )));
        }
        PrivateKeyDer::Sec1(_) => {
            return Err(invalid(format!("it is an EC key in SEC1 form; {convert}")));
        }
        _ => return Err(invalid(format!("it is in an unknown form; {convert}"))),
    }
    KeyPair::try_from(&der).map_err(|e| {
        invalid(format!(
            "{e}; the key must be ECDSA P-256 or P-384, Ed25519 or RSA"
        ))
    })
}

fn read_cert(dir: &Path, name: &str) -> Result<(CertFacts, String), Error> {
    let path = dir.join(name);
    let pem = fs::read_optional(&path)?.ok_or_else(|| incomplete(dir, name))?;
    let facts = inspect::parse_pem_single(&pem).map_err(|e| Error::corrupt(&path, e))?;
    Ok((facts, pem))
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists()
        .map_err(|e| Error::io("look for", path, e))
}

fn incomplete(dir: &Path, name: &str) -> Error {
    Error::Incomplete {
        dir: dir.to_path_buf(),
        missing: dir.join(name),
    }
}

fn sorted(ips: &[IpNet]) -> Vec<IpNet> {
    let mut ips = ips.to_vec();
    ips.sort();
    ips.dedup();
    ips
}

fn strings(ips: &[IpNet]) -> Vec<String> {
    ips.iter().map(ToString::to_string).collect()
}
