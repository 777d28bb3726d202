//! The byte streams the servers read and write.

/// An accepted TCP connection (plain; TLS wraps it when enabled).
pub(crate) type Stream = async_io::Async<std::net::TcpStream>;
