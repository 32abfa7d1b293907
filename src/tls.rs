//! TLS for both ends: rustls configured for HTTP/2.
//!
//! gRPC over TLS is HTTP/2 over TLS, negotiated with ALPN: both sides must offer `h2`, or a
//! conforming peer refuses the connection (RFC 9113 §3.2). The server loads a certificate
//! chain and key from PEM files (`--tls-cert`, `--tls-key`); the client trusts the CA
//! certificates of a PEM file (`--tls-ca`) and checks the server's name against its
//! certificate. Plaintext (HTTP/2 with prior knowledge, "h2c") stays the default.
//!
//! The crypto provider is `ring`: pure Rust and C compiled by `cc`, no cmake or assembler.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::wire::status::Status;

/// The ALPN protocol of HTTP/2.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS acceptor for a server, from PEM files of the certificate chain and the private key.
pub fn server_acceptor(
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert_pem.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert_pem.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_pem).map_err(|e| format!("{}: {e}", key_pem.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Client TLS settings: whom to trust, and the name to check the server's certificate for.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CA certificates in the PEM file `ca_pem`; checks the server for `server_name`.
    pub fn from_ca_file(ca_pem: &Path, server_name: &str) -> Result<ClientTls, Status> {
        let pem = std::fs::read(ca_pem)
            .map_err(|e| Status::invalid_argument(format!("{}: {e}", ca_pem.display())))?;
        ClientTls::from_ca_pem(&pem, server_name)
    }

    /// As [`from_ca_file`](Self::from_ca_file), from PEM bytes.
    pub fn from_ca_pem(pem: &[u8], server_name: &str) -> Result<ClientTls, Status> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Status::invalid_argument(format!("CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Status::invalid_argument(format!("CA certificate: {e}")))?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Status::internal(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| Status::invalid_argument(format!("server name: {e}")))?;
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Runs the TLS handshake over `socket` and checks that the server agreed to HTTP/2
    /// (ALPN `h2`). [`Channel`](crate::client::Channel) calls it on every connection it opens;
    /// it is public for callers that drive the connection themselves (tests, for one).
    pub async fn connect(
        &self,
        socket: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Status> {
        let stream = self
            .connector
            .connect(self.server_name.clone(), socket)
            .await
            .map_err(|e| Status::unavailable(format!("TLS handshake failed: {e}")))?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(Status::unavailable(
                "the server did not agree to HTTP/2 (ALPN h2)",
            ));
        }
        Ok(stream)
    }
}
