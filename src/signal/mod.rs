//! Call signaling, sans-IO: the router ([`hub::Hub`]: sessions, online
//! bots, heartbeats), the calls it carries ([`call`]: the record
//! and its transitions; [`calls`]: placing and relaying them), the
//! daemon-to-daemon envelopes ([`remote`]), the human check and the ICE
//! server lists. It imports nothing from the transport (`ws`, `http`): the
//! glue that needs the store, auth or the clock around a message is in
//! `crate::ws::route`.

// The daemon-to-daemon half of the router (sans-IO, unit-tested either
// way) has no transport without the `redis` feature.
pub(crate) mod call;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod calls;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod hub;
mod human;
pub(crate) mod ice;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod remote;
#[cfg(test)]
mod tests;
