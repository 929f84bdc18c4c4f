//! The offline bundle reader (`turtle_bundle::verify_reader`) against
//! damaged and forged bundles.
//!
//! Two uses of each input:
//! - the input as a whole bundle, read with a trusted key, with none, and as
//!   a stream of unknown length: never a panic, and never accepted (the
//!   fuzzer cannot forge the signature, and an unsigned bundle is refused
//!   where a key is trusted);
//! - the input as edits of a genuine signed bundle (5 bytes each: a 4-byte
//!   offset and a byte XORed there; a final short chunk cuts the bundle at
//!   its first byte's value in percent): the genuine bundle is accepted, and
//!   any bundle that differs from it is refused.
//!
//! Input: any bytes.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use turtle_bundle::manifest::{Image, Manifest, Part};
use turtle_bundle::write::write_bundle;
use turtle_bundle::{SecretKey, Trust, verify_reader};

/// A small genuine bundle signed by the trusted key: one image of two tiny
/// layers, a config and the archive's index.
fn genuine() -> &'static (Vec<u8>, Trust) {
    static GENUINE: OnceLock<(Vec<u8>, Trust)> = OnceLock::new();
    GENUINE.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let id = sha(&config);
        let files: Vec<(String, Vec<u8>)> = vec![
            ("1111/layer.tar".into(), (0..300u32).map(|i| (i * 7) as u8).collect()),
            ("2222/layer.tar".into(), (0..129u32).map(|i| (i * 13) as u8).collect()),
            (format!("{id}.json"), config),
            (
                "manifest.json".into(),
                format!(
                    r#"[{{"Config":"{id}.json","RepoTags":["demo-web:1"],"Layers":["1111/layer.tar","2222/layer.tar"]}}]"#
                )
                .into_bytes(),
            ),
        ];
        let project = serde_json::from_str(
            r#"{"name":"demo","working_dir":"/srv/demo","services":{"web":{"image":"demo-web:1","restart":"no"}}}"#,
        )
        .expect("a valid project");
        let manifest = Manifest {
            format: turtle_bundle::format::VERSION,
            architecture: "amd64".into(),
            project,
            release: None,
            images: vec![Image {
                id: format!("sha256:{id}"),
                repo_tags: vec!["demo-web:1".into()],
                config: format!("{id}.json"),
                layers: vec!["1111/layer.tar".into(), "2222/layer.tar".into()],
                diff_ids: vec![],
            }],
            parts: files
                .iter()
                .map(|(path, data)| Part {
                    path: path.clone(),
                    size: data.len() as u64,
                    sha256: sha(data),
                })
                .collect(),
            links: vec![],
            bases: vec![],
            delta: None,
        };
        let key = SecretKey::from_seed(&[7; 32]);
        let mut out = Vec::new();
        write_bundle(&mut out, &manifest, Some(&key), |p| {
            let data = files.iter().find(|(path, _)| *path == p.path).map(|(_, d)| d.clone());
            Ok(Cursor::new(data.expect("every part has its file")))
        })
        .expect("the genuine bundle is written");
        (out, Trust::new(vec![key.public()]))
    })
}

fn accepted(bytes: &[u8], trust: &Trust, known_length: bool) -> bool {
    let len = known_length.then_some(bytes.len() as u64);
    verify_reader(Cursor::new(bytes), trust, len).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let (bundle, trust) = genuine();

    // The input itself as a bundle.
    assert!(!accepted(data, trust, true), "a forged bundle was accepted");
    assert!(!accepted(data, trust, false), "a forged stream was accepted");
    let _ = accepted(data, &Trust::default(), true);

    // The input as edits of the genuine bundle.
    let mut edited = bundle.clone();
    let mut chunks = data.chunks_exact(5);
    for c in chunks.by_ref() {
        let at = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize % edited.len();
        edited[at] ^= c[4];
    }
    if let Some(&percent) = chunks.remainder().first() {
        let keep = edited.len() * usize::from(percent % 101) / 100;
        edited.truncate(keep);
    }
    let same = edited == *bundle;
    for known_length in [true, false] {
        assert_eq!(
            accepted(&edited, trust, known_length),
            same,
            "a bundle that {} the genuine one was {}",
            if same { "is" } else { "differs from" },
            if same { "refused" } else { "accepted" },
        );
    }
});
