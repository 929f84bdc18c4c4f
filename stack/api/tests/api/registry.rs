//! The registry token endpoint: signatures, claims and who gets which actions.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::fixture::{ADMIN_TOKEN, Answer, BUILDER_TOKEN, DOMAIN, HTTPS_PORT, Stack};

/// Checks a token's signature against the leaf's public key and its header, and
/// returns its claims.
fn verify(stack: &Stack, answer: &Answer) -> serde_json::Value {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["access_token"], token);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let leaf = CertificateDer::from_pem_slice(stack.files.leaf_cert_pem.as_bytes()).unwrap();
    let intermediate =
        CertificateDer::from_pem_slice(stack.files.intermediate_pem.as_bytes()).unwrap();
    assert_eq!(
        header["x5c"],
        serde_json::json!([STANDARD.encode(&leaf), STANDARD.encode(&intermediate)]),
        "x5c is [leaf, intermediate], padded standard base64, without the root"
    );

    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let public_key = cert.public_key().subject_public_key.data.to_vec();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(signature.len(), 64, "ES256 signatures are r || s");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the signature verifies with the leaf's key");
    let mut tampered = signature.clone();
    tampered[10] ^= 1;
    assert!(
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &tampered)
            .is_err()
    );

    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let service = format!("registry.{DOMAIN}:{HTTPS_PORT}");
    assert_eq!(claims["iss"], "turtle-api");
    assert_eq!(claims["aud"], service);
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["nbf"].as_u64().unwrap(), iat);
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 300);
    assert!(!claims["jti"].as_str().unwrap().is_empty());
    claims
}

fn token_path(scopes: &[&str]) -> String {
    let mut path = format!("/v1/registry/token?service=registry.{DOMAIN}:{HTTPS_PORT}");
    for s in scopes {
        path.push_str("&scope=");
        path.push_str(&s.replace(' ', "%20"));
    }
    path
}

#[tokio::test]
async fn registry_tokens_grant_by_caller() {
    let stack = Stack::start().await;
    let prod = stack.fleet("prod").await;
    stack.fleet("other").await;
    let device = stack.device(prod, None).await;
    let uuid = device["uuid"].as_str().unwrap();
    let device_key = device["device_key"].as_str().unwrap();
    let scopes = [
        "repository:prod/web:pull,push",
        "repository:other/web:pull registry:catalog:*",
    ];
    let path = token_path(&scopes);

    // docker login: no scope, empty access.
    let login = stack
        .get(&token_path(&[]))
        .basic("admin", ADMIN_TOKEN)
        .send()
        .await;
    let claims = verify(&stack, &login);
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["access"], serde_json::json!([]));

    let claims = verify(
        &stack,
        &stack.get(&path).basic("admin", ADMIN_TOKEN).send().await,
    );
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "prod/web", "actions": ["pull", "push"]},
            {"type": "repository", "name": "other/web", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );

    let claims = verify(
        &stack,
        &stack
            .get(&path)
            .basic("builder", BUILDER_TOKEN)
            .send()
            .await,
    );
    assert_eq!(claims["sub"], "builder");
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "prod/web", "actions": ["pull", "push"]},
            {"type": "repository", "name": "other/web", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": []},
        ])
    );

    let claims = verify(
        &stack,
        &stack.get(&path).basic(uuid, device_key).send().await,
    );
    assert_eq!(claims["sub"], uuid);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "prod/web", "actions": ["pull"]},
            {"type": "repository", "name": "other/web", "actions": []},
            {"type": "registry", "name": "catalog", "actions": []},
        ])
    );

    for (user, password) in [
        ("admin", BUILDER_TOKEN),
        ("builder", ADMIN_TOKEN),
        (uuid, "wrong"),
        ("00000000-0000-0000-0000-000000000000", device_key),
        ("someone", ADMIN_TOKEN),
    ] {
        let a = stack.get(&path).basic(user, password).send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(
            a.header("www-authenticate"),
            "Basic realm=\"turtle registry\""
        );
        assert!(a.error().contains("HTTP Basic"), "{}", a.error());
    }
    let a = stack.get(&path).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = stack.get(&path).bearer(ADMIN_TOKEN).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "bearer is not basic");

    let a = stack
        .get("/v1/registry/token?service=registry.elsewhere&scope=repository:prod/web:pull")
        .basic("admin", ADMIN_TOKEN)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("registry.elsewhere"), "{}", a.error());
    let a = stack
        .get(&token_path(&["repository:prod"]))
        .basic("admin", ADMIN_TOKEN)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}
