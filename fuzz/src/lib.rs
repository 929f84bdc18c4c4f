//! What the fuzz targets (`fuzz_targets/*.rs`) share: the text format of a
//! compose input ([`compose_input`]), the fleet api without a database
//! ([`api`]), and calling an axum router in memory ([`call`]) the way a
//! server would, on one tokio runtime per thread.

pub mod api;
pub mod compose_input;

use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
}

/// Runs `future` to completion on this thread's runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}

/// Whether to print each request and answer (`TURTLE_FUZZ_SHOW=1`, to see
/// what an input does: run the target binary on the input's file).
static SHOW: LazyLock<bool> = LazyLock::new(|| std::env::var_os("TURTLE_FUZZ_SHOW").is_some());

/// Sends `request` through `router` (as `axum::serve` would) and reads the
/// whole answer.
pub fn call(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    if *SHOW {
        eprintln!("{} {}", request.method(), request.uri());
    }
    let answer = block_on(async {
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("axum routers are infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("an in-memory answer reads whole")
            .to_bytes();
        (status, body)
    });
    if *SHOW {
        eprintln!("-> {} {}", answer.0, String::from_utf8_lossy(&answer.1));
    }
    answer
}

/// `bytes` as one URL path segment: every byte but unreserved ones
/// percent-encoded, so any name (`../..`, `/`, NUL, non-UTF-8) reaches the
/// router's path extractor, which decodes it.
pub fn path_segment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_encode_everything_but_unreserved_bytes() {
        assert_eq!(path_segment(b"demo-1_a.b~"), "demo-1_a.b~");
        assert_eq!(path_segment(b"../x/\0\xff"), "..%2Fx%2F%00%FF");
    }
}
