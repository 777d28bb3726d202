//! The daemon's identifiers, below every other module so that the store, the
//! auth layer and the signaling router can name them without naming each
//! other.

use std::rc::Rc;

use botcall_core::id::AgentId;

/// A daemon's id on the Redis bus.
pub(crate) type DaemonId = Rc<str>;

/// A connection's id: the slot index in the low 32 bits, a generation
/// above, so a stale id never reaches the socket that reused the slot
/// ([`crate::slots`]).
pub(crate) type ConnId = u64;

/// Who owns an agent id: a hash of the key that registered it. Only the
/// same key may refresh, change or delete the registration until it expires.
pub(crate) type Owner = [u8; 8];

/// A call's id. On the wire (`call_id`) it has the syntax of an agent id,
/// so [`botcall_core::protocol::Msg`] carries it as an [`AgentId`]; this
/// name says which of the two a value is.
pub(crate) type CallId = AgentId;

/// A caller session's id (the `session` of a `welcome`), with the syntax of
/// an agent id like [`CallId`].
pub(crate) type SessionId = AgentId;
