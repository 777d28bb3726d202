//! The byte streams the servers read and write: plain TCP, or TLS (cargo
//! feature `tls`, rustls with the ring provider) with certificates that are
//! reloaded on SIGHUP.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

/// An accepted connection.
pub(crate) enum Stream {
    Plain(Async<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::server::TlsStream<Async<TcpStream>>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Stream::Plain"),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => f.write_str("Stream::Tls"),
        }
    }
}

impl Stream {
    /// The local address the client connected to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Plain(s) => s.get_ref().local_addr(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().0.get_ref().local_addr(),
        }
    }
}

impl Stream {
    /// Sends our FIN (with TLS, `close_notify` first) so the peer reads to
    /// the end of our answers; reading stays possible. (`AsyncWrite::close`
    /// on an async-io socket only flushes.)
    pub(crate) async fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                futures_lite::AsyncWriteExt::close(&mut **s).await?;
                s.get_ref().0.get_ref().shutdown(std::net::Shutdown::Write)
            }
        }
    }

    /// Ready when a read may return data. Plain sockets ask the poller
    /// (no syscall when nothing happened); TLS may hold decrypted bytes, so
    /// it is always worth a read.
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_readable(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

/// TLS termination: the current certificate, swapped on reload.
#[cfg(feature = "tls")]
pub(crate) mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use futures_rustls::TlsAcceptor;
    use futures_rustls::rustls::ServerConfig;
    use futures_rustls::rustls::pki_types::pem::PemObject;
    use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    /// Builds an acceptor from PEM files (chain first, then key).
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no certificate found", cert.display()));
        }
        let key =
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let provider = Arc::new(futures_rustls::rustls::crypto::ring::default_provider());
        let cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}
