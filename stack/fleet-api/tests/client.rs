//! The client against a scripted server on 127.0.0.1 (plain or TLS): what it
//! sends, and how it reads answers and failures. The routes themselves are
//! tested against the real api in `stack/api/tests`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use turtle_fleet_api::{
    Client, Conditional, Credentials, Error, NewFleet, RegistryTokenQuery, VpnInfo,
};

/// A server that answers each connection with the next canned answer (then
/// closes it), and hands each request it read, head and body, to the test.
struct Scripted {
    port: u16,
    requests: mpsc::UnboundedReceiver<String>,
}

impl Scripted {
    async fn start(tls: Option<TlsAcceptor>, answers: Vec<String>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            for answer in answers {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                match &tls {
                    Some(acceptor) => {
                        // A refused handshake is the client's to report.
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            exchange(stream, &answer, &tx).await;
                        }
                    }
                    None => exchange(tcp, &answer, &tx).await,
                }
            }
        });
        Scripted { port, requests }
    }

    async fn request(&mut self) -> String {
        self.requests.recv().await.expect("a request arrived")
    }
}

/// Reads one request (head, then `Content-Length` bytes), writes `answer`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    answer: &str,
    tx: &mpsc::UnboundedSender<String>,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tx.send(String::from_utf8_lossy(&data).into_owned());
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// An HTTP/1.1 answer that closes the connection.
fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

fn json_answer(status: &str, body: &str) -> String {
    answer(status, &[("content-type", "application/json")], body)
}

const VPN_INFO: &str = r#"{"endpoint_host":"turtle.test","endpoint_port":51820,"server_address":"10.99.0.1","server_public_key":"pk","subnet":"10.99.0.0/16"}"#;

/// A CA of its own in a temporary directory: its root, and an acceptor
/// presenting its leaf for 127.0.0.1.
fn authority() -> (tempfile::TempDir, String, TlsAcceptor) {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let ca = turtle_certs::Authority::open_or_create(
        &dir.path().join("ca"),
        &turtle_certs::CaConfig::new("turtle.test"),
        now,
    )
    .unwrap();
    let leaf = ca
        .issue(
            &["api.turtle.test".into()],
            &["127.0.0.1".parse().unwrap()],
            now,
        )
        .unwrap();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let root = ca.root_pem().to_string();
    (dir, root, TlsAcceptor::from(Arc::new(config)))
}

/// Over https the client trusts the root it was given, and only that one: a
/// server whose chain leads to another root is a connection error.
#[tokio::test]
async fn https_trusts_the_given_root_only() {
    let (_dir, root, acceptor) = authority();
    let (_other_dir, other_root, _) = authority();
    let mut server = Scripted::start(
        Some(acceptor),
        vec![
            json_answer("200 OK", VPN_INFO),
            json_answer("200 OK", VPN_INFO),
        ],
    )
    .await;
    let base = format!("https://127.0.0.1:{}", server.port);

    let client = Client::builder(&base)
        .root_ca_pem(root)
        .credentials(Credentials::Vpn("vpn-token".into()))
        .build()
        .unwrap();
    let info: VpnInfo = client.vpn_info().await.unwrap();
    assert_eq!(info.endpoint_port, 51820);
    assert_eq!(info.subnet, "10.99.0.0/16");
    let request = server.request().await;
    assert!(request.starts_with("GET /v1/vpn HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("\r\nauthorization: Bearer vpn-token\r\n"),
        "{request}"
    );

    let stranger = Client::builder(&base)
        .root_ca_pem(other_root)
        .build()
        .unwrap();
    let e = stranger.vpn_info().await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(e.status(), None);
}

/// An answer other than the route's success is `Error::Status` with the api's
/// message and challenge; a body that is not an error answer gives its start.
#[tokio::test]
async fn error_answers_carry_status_message_and_challenge() {
    let mut server = Scripted::start(
        None,
        vec![
            answer(
                "401 Unauthorized",
                &[
                    ("content-type", "application/json"),
                    ("www-authenticate", "Bearer realm=\"turtle\""),
                ],
                r#"{"error":"this route needs the admin token"}"#,
            ),
            answer("502 Bad Gateway", &[], "<html>bad gateway</html>\n"),
            json_answer("201 Created", r#"{"id": "not a number"}"#),
            answer(
                "429 Too Many Requests",
                &[("content-type", "application/json"), ("retry-after", "7")],
                r#"{"error":"past the log budget"}"#,
            ),
        ],
    )
    .await;
    let client = Client::new(
        format!("http://127.0.0.1:{}/", server.port),
        Credentials::Admin("wrong".into()),
    )
    .unwrap();

    let e = client.fleets().await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.api_message(), Some("this route needs the admin token"));
    assert_eq!(e.challenge(), Some("Bearer realm=\"turtle\""));
    assert!(e.to_string().contains("GET http://127.0.0.1:"));
    assert!(
        server
            .request()
            .await
            .starts_with("GET /v1/fleets HTTP/1.1")
    );

    let e = client.fleet(7).await.unwrap_err();
    assert_eq!(e.status(), Some(502));
    assert_eq!(e.api_message(), Some("<html>bad gateway</html>"));
    assert_eq!(e.challenge(), None);
    assert!(
        server
            .request()
            .await
            .starts_with("GET /v1/fleets/7 HTTP/1.1")
    );

    let e = client
        .create_fleet(&NewFleet {
            name: "prod".parse().unwrap(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { status: 201, .. }), "{e:?}");
    let request = server.request().await;
    assert!(
        request.starts_with("POST /v1/fleets HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\ncontent-type: application/json\r\n"));
    assert!(
        request.ends_with("\r\n\r\n{\"name\":\"prod\"}"),
        "{request}"
    );

    let e = client.post_logs(&[]).await.unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.retry_after(), Some(7));
    assert_eq!(e.api_message(), Some("past the log budget"));
    assert!(
        server
            .request()
            .await
            .starts_with("POST /v1/device/logs HTTP/1.1")
    );
}

/// A conditional GET sends If-None-Match and reads a 304 as not modified, with
/// the ETag the server repeats; a 200 gives the value and its ETag.
#[tokio::test]
async fn conditional_gets_tell_not_modified() {
    let peers = r#"{"peers":[{"allowed_ips":["10.99.0.2/32"],"device":"u","public_key":"pk"}]}"#;
    let mut server = Scripted::start(
        None,
        vec![
            answer(
                "200 OK",
                &[("content-type", "application/json"), ("etag", "\"v1\"")],
                peers,
            ),
            answer("304 Not Modified", &[("etag", "\"v1\"")], ""),
        ],
    )
    .await;
    let client = Client::new(
        format!("http://127.0.0.1:{}", server.port),
        Credentials::Vpn("t".into()),
    )
    .unwrap();
    let first = client.vpn_peers(None).await.unwrap();
    assert_eq!(first.etag(), Some("\"v1\""));
    let Conditional::Modified { value, .. } = first else {
        panic!("a 200 is modified");
    };
    assert_eq!(value.peers[0].allowed_ips, ["10.99.0.2/32"]);
    assert!(!server.request().await.contains("if-none-match"));

    let second = client.vpn_peers(Some("\"v1\"")).await.unwrap();
    assert_eq!(
        second,
        Conditional::NotModified {
            etag: Some("\"v1\"".into())
        }
    );
    assert!(
        server
            .request()
            .await
            .contains("\r\nif-none-match: \"v1\"\r\n")
    );
}

/// The registry's token endpoint gets HTTP Basic and the scopes as repeated
/// parameters.
#[tokio::test]
async fn registry_tokens_are_asked_with_http_basic() {
    let mut server = Scripted::start(
        None,
        vec![json_answer(
            "200 OK",
            r#"{"access_token":"t","expires_in":300,"issued_at":"2025-06-01T12:00:00Z","token":"t"}"#,
        )],
    )
    .await;
    let client = Client::new(
        format!("http://127.0.0.1:{}", server.port),
        Credentials::Device {
            uuid: "6f9619ff-8b86-d011-b42d-00c04fc964ff".into(),
            key: "key".into(),
        },
    )
    .unwrap();
    let token = client
        .registry_token(&RegistryTokenQuery {
            service: Some("registry.turtle.test".into()),
            scopes: vec![
                "repository:prod/web:pull".into(),
                "registry:catalog:*".into(),
            ],
            account: None,
        })
        .await
        .unwrap();
    assert_eq!(token.expires_in, 300);
    let request = server.request().await;
    assert!(
        request.starts_with(
            "GET /v1/registry/token?service=registry.turtle.test\
             &scope=repository%3Aprod%2Fweb%3Apull&scope=registry%3Acatalog%3A%2A HTTP/1.1\r\n"
        ),
        "{request}"
    );
    // base64("6f9619ff-8b86-d011-b42d-00c04fc964ff:key")
    assert!(
        request.contains(
            "\r\nauthorization: Basic NmY5NjE5ZmYtOGI4Ni1kMDExLWI0MmQtMDBjMDRmYzk2NGZmOmtleQ==\r\n"
        ),
        "{request}"
    );
}

/// Nothing listening is a connection error; a server that never answers is a
/// timeout. Neither has a status.
#[tokio::test]
async fn unreachable_and_silent_servers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = Client::new(format!("http://127.0.0.1:{port}"), Credentials::None)
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("refused"), "{e}");

    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::builder(format!("http://{}", silent.local_addr().unwrap()))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = client.health().await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(e.status(), None);
}
