//! The images Turtle builds for its own stack: the executable they carry,
//! and the tag that says which executable that is.
//!
//! The stack's own services (api, builder, vpn) are subcommands of the one
//! `turtle` executable. A service labelled `io.turtle.build.self: turtle`
//! gets the running executable added to its build context under that name,
//! so its Dockerfile does `COPY turtle /usr/local/bin/turtle` and the box
//! needs no Rust toolchain and no second copy of the binary.
//!
//! Such an image must be rebuilt when the executable changes, and reused
//! otherwise. The compose file tags it with `${TURTLE_BUILD_ID}`, which the
//! CLI sets when loading a compose file (unless the environment sets it): a
//! short hash of the executable's version, size and modification time, so
//! an upgraded binary means a new tag, hence a build, and an unchanged one
//! means the image is found and reused. (Hashing the contents would cost a
//! second per `up` on a slow board.) The executable added is the one that
//! builds: the daemon's when `up` hands the project to a daemon, so there
//! the CLI takes the id from the daemon (`/v1/ping`), and the tag always
//! names the executable inside. After an upgrade, restart the daemon, then
//! `up`: the new daemon's id is a new tag.

use std::path::PathBuf;

/// Set on a service with a build section: the name under which the running
/// `turtle` executable is added to the build context.
pub const BUILD_SELF_LABEL: &str = "io.turtle.build.self";
/// The interpolation variable naming this executable's build.
pub const BUILD_ID_VAR: &str = "TURTLE_BUILD_ID";

/// The running executable, as a path that reads it even after the file
/// was replaced (an upgrade under a running daemon): `/proc/self/exe`.
pub fn self_exe() -> std::io::Result<PathBuf> {
    let proc = PathBuf::from("/proc/self/exe");
    if proc.exists() {
        return Ok(proc);
    }
    std::env::current_exe()
}

/// The build id: see the module docs.
pub fn build_id() -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    if let Ok(meta) = self_exe().and_then(std::fs::metadata) {
        h.update(meta.len().to_le_bytes());
        if let Ok(t) = meta.modified()
            && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
        {
            h.update(d.as_nanos().to_le_bytes());
        }
    }
    hex::encode(&h.finalize()[..6])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_id_is_stable_for_one_executable() {
        let a = super::build_id();
        assert_eq!(a.len(), 12);
        assert_eq!(a, super::build_id());
    }
}
