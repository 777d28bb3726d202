//! Strict JSON: a validating, allocation-free reader and a writer into any
//! [`Sink`](write::Sink).

pub mod read;
mod swar;
pub mod write;

pub use read::{Array, JsonStr, Limits, Number, Object, Value, parse, parse_object, parse_with};
pub use write::{Sink, SliceSink, Writer};

/// Why a JSON document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// Unexpected byte at this offset.
    Syntax(usize),
    /// The document ended early.
    Eof,
    /// Nesting deeper than [`read::MAX_DEPTH`].
    TooDeep,
    /// An object with more than [`read::MAX_MEMBERS`] members.
    TooManyMembers,
    /// The same key twice in one object (compared after unescaping).
    DuplicateKey,
    /// An invalid escape or a lone UTF-16 surrogate.
    BadEscape,
    /// A raw control character inside a string.
    ControlChar,
    /// Something after the top-level value.
    TrailingData,
    /// The named field has the wrong JSON type.
    WrongType(&'static str),
    /// The named field must be an integer that fits.
    NotInteger(&'static str),
    /// The named field is required.
    Missing(&'static str),
    /// A string or the output does not fit the space given.
    TooLong,
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JsonError::Syntax(at) => write!(f, "JSON syntax error at byte {at}"),
            JsonError::Eof => f.write_str("JSON ends early"),
            JsonError::TooDeep => f.write_str("JSON nested too deeply"),
            JsonError::TooManyMembers => f.write_str("JSON object has too many members"),
            JsonError::DuplicateKey => f.write_str("duplicate key in JSON object"),
            JsonError::BadEscape => f.write_str("invalid escape in JSON string"),
            JsonError::ControlChar => f.write_str("control character in JSON string"),
            JsonError::TrailingData => f.write_str("data after the JSON value"),
            JsonError::WrongType(k) => write!(f, "field `{k}` has the wrong type"),
            JsonError::NotInteger(k) => write!(f, "field `{k}` must be an integer"),
            JsonError::Missing(k) => write!(f, "field `{k}` is required"),
            JsonError::TooLong => f.write_str("JSON text too long"),
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for JsonError {}
