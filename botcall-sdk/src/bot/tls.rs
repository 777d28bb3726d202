//! `https://` daemons (feature `tls`): rustls over the TCP stream, with the
//! Mozilla root certificates from `webpki-roots`.

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};

use async_io::Async;
use futures_rustls::TlsConnector;
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::rustls::{ClientConfig, RootCertStore};

use super::BotError;
use super::net::Stream;

fn config() -> Arc<ClientConfig> {
    static CFG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(futures_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        Arc::new(match cfg {
            Ok(c) => c,
            // The default provider supports the default versions.
            Err(_) => ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        })
    })
    .clone()
}

/// TLS handshake for `host` on an open TCP stream.
pub(crate) async fn wrap(tcp: Async<TcpStream>, host: &str) -> Result<Stream, BotError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| BotError::Config(format!("TLS server name {host:?}: {e}")))?;
    let s = TlsConnector::from(config())
        .connect(name, tcp)
        .await
        .map_err(|e| BotError::io("TLS handshake", &e))?;
    Ok(Stream::Tls(Box::new(s)))
}
