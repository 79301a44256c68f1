//! Built-in TLS (SPEC §6): with `tls.cert` and `tls.key` the same server answers `https://` and
//! `wss://`; a client that does not trust the certificate fails; bad files stop start-up with
//! the key named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::sync::Arc;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

struct Pki {
    dir: tempfile::TempDir,
    cert_pem: String,
}

fn self_signed() -> Pki {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    Pki {
        cert_pem: cert.cert.pem(),
        dir,
    }
}

fn connector(trusted_pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(trusted_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    server: &TestServer,
    trusted_pem: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector(trusted_pem).connect(name, tcp).await
}

/// The next text frame of a WebSocket, as JSON.
async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> serde_json::Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame over wss")
            .expect("open")
            .expect("no error");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn https_and_wss_on_the_same_port() {
    let pki = self_signed();
    let (cert, key) = (
        pki.dir.path().join("cert.pem"),
        pki.dir.path().join("key.pem"),
    );
    let server = TestServer::start_with(move |c| {
        c.tls.cert = Some(cert);
        c.tls.key = Some(key);
    })
    .await;

    // HTTPS.
    let mut tls = tls_stream(&server, &pki.cert_pem).await.unwrap();
    tls.write_all(b"GET /missions/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"codename\":\"Nightingale\""),
        "{response}"
    );

    // WSS: the native protocol over the TLS stream, and a live update.
    let tls = tls_stream(&server, &pki.cert_pem).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "welcome");
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"subscribe","channel":"missions:1"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "subscribed");
    // An HTTPS write; its publication arrives over WSS.
    let body = r#"{"location":"Tallinn"}"#;
    let mut tls = tls_stream(&server, &pki.cert_pem).await.unwrap();
    tls.write_all(
        format!(
            "PUT /missions/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            hq(),
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let update = next_text(&mut ws).await;
    assert_eq!(
        (
            update["type"].as_str(),
            update["channel"].as_str(),
            update["data"]["location"].as_str()
        ),
        (Some("mission-update"), Some("missions:1"), Some("Tallinn"))
    );

    // Plain HTTP to a TLS port is not served: the connection fails, no HTTP answer at all.
    let plain = reqwest::Client::new()
        .get(server.http("/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_the_client() {
    let pki = self_signed();
    let other = self_signed();
    let (cert, key) = (
        pki.dir.path().join("cert.pem"),
        pki.dir.path().join("key.pem"),
    );
    let server = TestServer::start_with(move |c| {
        c.tls.cert = Some(cert);
        c.tls.key = Some(key);
    })
    .await;
    assert!(tls_stream(&server, &other.cert_pem).await.is_err());
    // The server keeps serving trusted clients after a failed handshake.
    assert!(tls_stream(&server, &pki.cert_pem).await.is_ok());
}

#[test]
fn bad_tls_settings_name_the_key() {
    let pki = self_signed();
    let mut c = switchboard::Config::default();
    c.tls.cert = Some(pki.dir.path().join("cert.pem"));
    assert!(c.finish().unwrap_err().to_string().contains("tls.key"));
    let mut c = switchboard::Config::default();
    c.tls.cert = Some(pki.dir.path().join("missing.pem"));
    c.tls.key = Some(pki.dir.path().join("key.pem"));
    assert!(c.finish().unwrap_err().to_string().contains("tls.cert"));
    let mut c = switchboard::Config::default();
    c.tls.cert = Some(pki.dir.path().join("cert.pem"));
    c.tls.key = Some(pki.dir.path().join("cert.pem")); // a certificate is not a key
    assert!(c.finish().unwrap_err().to_string().contains("tls.key"));
    // A key that belongs to another certificate: the message names both settings.
    let other = self_signed();
    let mut c = switchboard::Config::default();
    c.tls.cert = Some(pki.dir.path().join("cert.pem"));
    c.tls.key = Some(other.dir.path().join("key.pem"));
    let e = c.finish().unwrap_err().to_string();
    assert!(e.contains("tls.cert") && e.contains("tls.key"), "{e}");
}
