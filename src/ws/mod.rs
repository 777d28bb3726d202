//! WebSockets on the API port: the upgrade ([`handshake`]), framing
//! ([`frame`], sans-IO) and the per-socket task ([`conn`]).

pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod handshake;

pub(crate) use conn::spawn;
pub(crate) use handshake::{handshake, is_upgrade};
