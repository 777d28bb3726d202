//! STUN responder (to be written).
