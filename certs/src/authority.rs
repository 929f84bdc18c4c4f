//! The CA itself: creating it once, importing an operator's root, opening it again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{CertifiedIssuer, Issuer, KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;
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
