//! The registry token endpoint's `scope` parameter: the parser
//! (`turtle_api::scope::parse`, Distribution's grammar), and the endpoint
//! itself through the api's router (`GET /v1/registry/token?scope=...` with
//! the builder's credentials, which need no database): parsing, the grant,
//! the signed token.
//!
//! Beyond "no panic": a scope the parser takes names a repository the
//! registry reads one way only: each path component is lowercase letters
//! and digits with `.`, `_`, `__` or dashes inside (never empty, `.` or
//! `..`, never a host or a port), the name is at most 255 bytes, and the
//! scope written back re-parses as itself. The endpoint answers a 4xx, never
//! a 5xx.
//!
//! Input: the scope text (any bytes; UTF-8 for the parser), percent-encoded
//! into the query.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use turtle_api::scope::{self, NAME_MAX};
use turtle_fuzz::api::{self, BUILDER_TOKEN};

/// The grammar's component, `[a-z0-9]+ ( ([._] | __ | -+) [a-z0-9]+ )*`,
/// written out independently of the parser: runs of letters and digits with
/// one separator between each two.
fn plain_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    let mut rest = c;
    loop {
        let run = rest.len() - rest.trim_start_matches(alnum).len();
        if run == 0 {
            return false;
        }
        rest = &rest[run..];
        if rest.is_empty() {
            return true;
        }
        let sep_len = rest.len() - rest.trim_start_matches(|ch| !alnum(ch)).len();
        let sep = &rest[..sep_len];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
        rest = &rest[sep_len..];
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(scopes) = scope::parse(text)
    {
        for s in &scopes {
            let name = s.name.as_str();
            assert!(name.len() <= NAME_MAX, "{name:?} is longer than {NAME_MAX}");
            for c in s.name.components() {
                assert!(plain_component(c), "component {c:?} of {name:?}");
            }
            assert!(!s.actions.is_empty());
            let written = format!("{}:{}:{}", s.kind_text(), name, s.actions.join(","));
            let again = scope::parse_one(&written)
                .unwrap_or_else(|e| panic!("{written:?} does not re-parse: {e}"));
            assert_eq!(&again, s, "{written:?} re-parses differently");
        }
    }
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("builder:{BUILDER_TOKEN}"))
    );
    let Ok(request) = Request::builder()
        .method(Method::GET)
        .uri(format!(
            "/v1/registry/token?service=registry.{}&scope={}",
            api::DOMAIN,
            turtle_fuzz::path_segment(data)
        ))
        .header("authorization", basic)
        .body(Body::empty())
    else {
        return;
    };
    let (status, answer) = turtle_fuzz::call(api::router(), request);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        api::acceptable(status, &answer),
        "{status} for scope {:?}: {answer}",
        String::from_utf8_lossy(data)
    );
});
