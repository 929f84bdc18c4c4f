//! The registry token endpoint: signatures, claims and who gets which actions.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use turtle_fleet_api::{Credentials, Error, RegistryToken, RegistryTokenQuery};

use crate::fixture::{ADMIN_TOKEN, BUILDER_TOKEN, DOMAIN, HTTPS_PORT, Stack};

/// Checks a token's signature against the leaf's public key and its header, and
/// returns its claims; a device's token lives 60 s, others 300 s.
fn verify(stack: &Stack, answer: Result<RegistryToken, Error>) -> serde_json::Value {
    let body = answer.expect("a token");
    let token = body.token.as_str();
    assert_eq!(body.access_token, token);
    let lifetime = body.expires_in;
    assert!(body.issued_at.ends_with('Z'));

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
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + lifetime);
    let device = claims["sub"] != "admin" && claims["sub"] != "builder";
    assert_eq!(lifetime, if device { 60 } else { 300 }, "{claims}");
    assert!(!claims["jti"].as_str().unwrap().is_empty());
    claims
}

/// A token request for this stack's registry with these scope parameters.
fn token_query(scopes: &[&str]) -> RegistryTokenQuery {
    RegistryTokenQuery {
        service: Some(format!("registry.{DOMAIN}:{HTTPS_PORT}")),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        account: None,
    }
}

#[tokio::test]
async fn registry_tokens_grant_by_caller() {
    let stack = Stack::start().await;
    let prod = stack.fleet("prod").await;
    stack.fleet("other").await;
    let device = stack.device(prod, None).await;
    let uuid = device.uuid.as_str();
    let scopes = [
        "repository:prod/web:pull,push",
        "repository:other/web:pull registry:catalog:*",
    ];
    let query = token_query(&scopes);
    let admin = stack.admin();

    // docker login: no scope, empty access.
    let claims = verify(&stack, admin.registry_token(&token_query(&[])).await);
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["access"], serde_json::json!([]));

    let claims = verify(&stack, admin.registry_token(&query).await);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "prod/web", "actions": ["pull", "push"]},
            {"type": "repository", "name": "other/web", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );

    let builder = stack.calling(Credentials::Builder(BUILDER_TOKEN.into()));
    let claims = verify(&stack, builder.registry_token(&query).await);
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
        stack.as_device(&device).registry_token(&query).await,
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

    for wrong in [
        Credentials::Admin(BUILDER_TOKEN.into()),
        Credentials::Builder(ADMIN_TOKEN.into()),
        Credentials::Device {
            uuid: uuid.into(),
            key: "wrong".into(),
        },
        Credentials::Device {
            uuid: "00000000-0000-0000-0000-000000000000".into(),
            key: device.device_key.clone(),
        },
    ] {
        let e = stack
            .calling(wrong.clone())
            .registry_token(&query)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(401), "{wrong:?}");
        assert_eq!(e.challenge(), Some("Basic realm=\"turtle registry\""));
        assert!(e.api_message().unwrap().contains("HTTP Basic"), "{e}");
    }
    // A user the client never sends: neither admin, builder nor a device.
    let path = format!(
        "/v1/registry/token?service=registry.{DOMAIN}:{HTTPS_PORT}&scope=repository:prod/web:pull"
    );
    let a = stack.get(&path).basic("someone", ADMIN_TOKEN).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.header("www-authenticate"),
        "Basic realm=\"turtle registry\""
    );
    assert!(a.error().contains("HTTP Basic"), "{}", a.error());
    let e = stack.api.registry_token(&query).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "no credentials");
    let a = stack.get(&path).bearer(ADMIN_TOKEN).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "bearer is not basic");

    let elsewhere = RegistryTokenQuery {
        service: Some("registry.elsewhere".into()),
        scopes: vec!["repository:prod/web:pull".into()],
        account: None,
    };
    let e = admin.registry_token(&elsewhere).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.api_message().unwrap().contains("registry.elsewhere"),
        "{e}"
    );
    let e = admin
        .registry_token(&token_query(&["repository:prod"]))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
}
