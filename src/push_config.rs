//! Web Push settings (the `push_*` options of [`crate::config::OPTIONS`]),
//! kept in their own struct so the push code reads one place.

use std::path::PathBuf;

/// The `push_*` options, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct PushSettings {
    /// VAPID `sub`: the operator's contact; Web Push is off while empty.
    pub(crate) subject: String,
    pub(crate) vapid_key: Option<PathBuf>,
    pub(crate) max_subscriptions: usize,
    pub(crate) per_agent: usize,
    pub(crate) per_ip: usize,
    pub(crate) subscription_days: u64,
    pub(crate) concurrency: usize,
    pub(crate) queue: usize,
    pub(crate) timeout: u64,
    pub(crate) ttl: u64,
    pub(crate) online_debounce: u64,
    pub(crate) callback_per_bot: u32,
    pub(crate) callback_per_subscriber: u32,
    pub(crate) allow_loopback: bool,
    pub(crate) ca_file: Option<PathBuf>,
}

impl PushSettings {
    /// Sets one `push_*` option (numbers were range-checked by the caller).
    /// `Ok(false)`: not a push option.
    pub(crate) fn set(&mut self, name: &str, v: &str) -> Result<bool, String> {
        let v = v.trim();
        let num = |v: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("option `{name}`: `{v}` is not a non-negative integer"))
        };
        let path = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
        match name {
            "push_subject" => self.subject = v.to_string(),
            "push_vapid_key" => self.vapid_key = path(v),
            "push_max_subscriptions" => self.max_subscriptions = num(v)? as usize,
            "push_per_agent" => self.per_agent = num(v)? as usize,
            "push_per_ip" => self.per_ip = num(v)? as usize,
            "push_subscription_days" => self.subscription_days = num(v)?,
            "push_concurrency" => self.concurrency = num(v)? as usize,
            "push_queue" => self.queue = num(v)? as usize,
            "push_timeout" => self.timeout = num(v)?,
            "push_ttl" => self.ttl = num(v)?,
            "push_online_debounce" => self.online_debounce = num(v)?,
            "push_callbacks_per_bot" => self.callback_per_bot = num(v)? as u32,
            "push_callbacks_per_subscriber" => self.callback_per_subscriber = num(v)? as u32,
            "push_allow_loopback" => {
                self.allow_loopback = match v {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" | "" => false,
                    _ => return Err(format!("option `{name}`: `{v}` is not a boolean")),
                }
            }
            "push_ca_file" => self.ca_file = path(v),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether Web Push is configured (a VAPID contact is set).
    pub(crate) fn enabled(&self) -> bool {
        !self.subject.is_empty()
    }
}

/// Checks a VAPID `sub`: a `mailto:` address or an `https:` URL on a
/// dotted host (push services refuse others).
pub(crate) fn check_subject(sub: &str) -> Result<(), String> {
    let ok = if let Some(addr) = sub.strip_prefix("mailto:") {
        match addr.split_once('@') {
            Some((user, domain)) => {
                !user.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        }
    } else if let Some(rest) = sub.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && host.contains('.')
    } else {
        false
    };
    let clean = sub
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok && clean && sub.len() <= 256 {
        Ok(())
    } else {
        Err(format!(
            "push_subject `{sub}` must be a contact push services can reach: mailto:you@your.domain or https://your.site/contact (Apple's push service refuses others)"
        ))
    }
}
