//! Built-in TLS (`wss://`, `https://`) with rustls when `tls.cert` and `tls.key` are set.
//!
//! TLS handshakes run in the connection's own task (at most [`MAX_HANDSHAKES`] at once, each
//! bounded by [`HANDSHAKE_TIMEOUT`]; see `accept`), so a client that stalls its handshake never
//! holds up the accept loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// Handshakes in progress at most; further connections wait for a slot.
pub const MAX_HANDSHAKES: usize = 1024;
/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or key could not be used (the message names the file, never its content).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or has no certificate.
    #[error("tls.cert: cannot read certificates from {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key file is missing, unreadable or has no private key.
    #[error("tls.key: cannot read a private key from {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Certificate and key do not form a usable configuration (e.g. the key belongs to another
    /// certificate): both settings are named, since either file may be the wrong one.
    #[error(
        "tls.cert ({cert}) and tls.key ({key}) cannot be used together: {reason}; check that the key belongs to the certificate"
    )]
    Config {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Builds the acceptor from PEM files. HTTP/1.1 only (WebSocket upgrades need it).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
