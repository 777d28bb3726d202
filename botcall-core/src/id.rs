//! Identifiers: agent ids, call ids and caller session ids share one alphabet.
//!
//! 1–64 characters of `[A-Za-z0-9._-]`, case-sensitive. A base64url RFC 7638
//! key thumbprint (43 characters) fits, so open registration can use it as-is.

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// Empty.
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    TooLong,
    /// A character outside `[A-Za-z0-9._-]`.
    BadChar,
}

impl core::fmt::Display for IdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IdError::Empty => "id is empty",
            IdError::TooLong => "id is longer than 64 characters",
            IdError::BadChar => "id may only contain A-Z a-z 0-9 . _ -",
        })
    }
}

/// Checks `s` against the id rules — the one place they live.
///
/// # Errors
/// [`IdError`] naming the broken rule.
pub fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(IdError::BadChar)
    }
}

/// A validated id, stored inline (no allocation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentId(heapless::String<MAX_ID_LEN>);

// Hashes exactly like `str`, so maps keyed by `AgentId` can be queried with `&str`.
impl core::hash::Hash for AgentId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl core::borrow::Borrow<str> for AgentId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AgentId {
    /// Validates and copies `s`.
    ///
    /// # Errors
    /// [`IdError`] if `s` breaks the id rules.
    pub fn new(s: &str) -> Result<Self, IdError> {
        validate(s)?;
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| IdError::TooLong)?;
        Ok(AgentId(out))
    }
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Display for AgentId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::ops::Deref for AgentId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(validate("bot-1.a_B"), Ok(()));
        assert_eq!(validate(""), Err(IdError::Empty));
        assert_eq!(validate(&"a".repeat_64()), Ok(()));
        assert_eq!(validate("a/b"), Err(IdError::BadChar));
        assert_eq!(validate("é"), Err(IdError::BadChar));
        assert_eq!(validate("a b"), Err(IdError::BadChar));
        // A thumbprint is 43 base64url chars.
        assert_eq!(
            validate("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
            Ok(())
        );
        let long = "x".repeat_n::<65>();
        assert_eq!(validate(&long), Err(IdError::TooLong));
        assert_eq!(AgentId::new("Bot").unwrap().as_str(), "Bot");
        assert_ne!(AgentId::new("Bot"), AgentId::new("bot"));
    }

    trait Rep {
        fn repeat_64(&self) -> heapless::String<64>;
        fn repeat_n<const N: usize>(&self) -> heapless::String<N>;
    }
    impl Rep for str {
        fn repeat_64(&self) -> heapless::String<64> {
            self.repeat_n::<64>()
        }
        fn repeat_n<const N: usize>(&self) -> heapless::String<N> {
            let mut s = heapless::String::new();
            while s.push_str(self).is_ok() {}
            s
        }
    }
}
