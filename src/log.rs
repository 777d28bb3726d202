//! Logging to stderr: one line per event, `LEVEL message`, level chosen by
//! `log_level`. journald adds timestamps; elsewhere the line carries one.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::config::Level;

static LEVEL: AtomicU8 = AtomicU8::new(2);
static STAMP: AtomicU8 = AtomicU8::new(1);

/// Sets the level (and whether to prefix a UTC timestamp: not under journald).
pub(crate) fn init(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    STAMP.store(u8::from(!journald), Ordering::Relaxed);
}

pub(crate) fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

pub(crate) fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let tag = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    if STAMP.load(Ordering::Relaxed) == 1 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (y, mo, d, h, mi, s, _) = crate::http::civil(t);
        eprintln!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z {tag} {args}");
    } else {
        eprintln!("{tag} {args}");
    }
}

#[macro_export]
#[doc(hidden)]
macro_rules! log_at {
    ($lvl:expr, $($t:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, format_args!($($t)*));
        }
    };
}
/// Logs at error level.
#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log_at!($crate::config::Level::Error, $($t)*) }; }
/// Logs at warn level.
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log_at!($crate::config::Level::Warn, $($t)*) }; }
/// Logs at info level.
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log_at!($crate::config::Level::Info, $($t)*) }; }
/// Logs at debug level.
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log_at!($crate::config::Level::Debug, $($t)*) }; }
