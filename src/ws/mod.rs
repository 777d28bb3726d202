//! WebSockets on the API port: the upgrade ([`handshake`]), framing
//! ([`frame`], sans-IO), the per-socket task ([`conn`]), what a
//! message does around the router ([`route`]: auth, store) and the outbound
//! queues of all sockets ([`registry`]).

pub(crate) mod conn;
pub mod frame;
pub(crate) mod handshake;
pub(crate) mod registry;
pub(crate) mod route;
pub(crate) mod session;

pub(crate) use conn::spawn;
pub(crate) use handshake::{handshake, is_upgrade};
