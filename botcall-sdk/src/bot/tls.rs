//! `https://` daemons (feature `tls`): rustls over the TCP stream, trusting the
//! Mozilla root certificates from `webpki-roots` plus, if configured, the CA
//! certificates of a PEM file (the private CA of a LAN daemon).

use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_io::Async;
use futures_rustls::TlsConnector;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{ClientConfig, RootCertStore};

use super::BotError;

/// A TLS stream over TCP (`net::Stream::Tls` holds it).
pub(crate) type TlsStream = futures_rustls::client::TlsStream<Async<TcpStream>>;

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The webpki roots plus every certificate in the PEM file `ca`.
///
/// # Errors
/// [`BotError::Config`] naming the file: unreadable, not PEM, no certificate in
/// it, or a certificate rustls cannot use as a trust anchor.
pub(crate) fn roots_with(ca: &Path) -> Result<RootCertStore, BotError> {
    let bad = |m: String| BotError::Config(format!("TLS CA file {}: {m}", ca.display()));
    let mut roots = webpki_roots();
    let before = roots.len();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.len() == before {
        return Err(bad("no CERTIFICATE block in it".into()));
    }
    Ok(roots)
}

fn config_with(roots: RootCertStore) -> Result<Arc<ClientConfig>, BotError> {
    let provider = Arc::new(futures_rustls::rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| BotError::Config(format!("TLS configuration: {e}")))
}

/// The client configuration: built once for the webpki roots; with a CA file,
/// built on each connect so a replaced file is picked up on reconnect.
fn config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, BotError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    match ca {
        Some(ca) => config_with(roots_with(ca)?),
        None => match DEFAULT.get() {
            Some(c) => Ok(c.clone()),
            None => {
                let c = config_with(webpki_roots())?;
                Ok(DEFAULT.get_or_init(|| c).clone())
            }
        },
    }
}

/// TLS handshake for `host` on an open TCP stream.
pub(crate) async fn wrap(
    tcp: Async<TcpStream>,
    host: &str,
    ca: Option<&Path>,
) -> Result<Box<TlsStream>, BotError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| BotError::Config(format!("TLS server name {host:?}: {e}")))?;
    let s = TlsConnector::from(config(ca)?)
        .connect(name, tcp)
        .await
        .map_err(|e| BotError::io("TLS handshake", &e))?;
    Ok(Box::new(s))
}
