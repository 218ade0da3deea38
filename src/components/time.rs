//! Times as people read them: "12 s ago", kept live by one ticking signal.

use std::time::Duration;

use leptos::prelude::*;

/// A signal holding "now" in milliseconds, updated every second while the
/// calling component lives.
pub fn use_now() -> ReadSignal<f64> {
    let (now, set_now) = signal(web_sys::js_sys::Date::now());
    if let Ok(handle) = set_interval_with_handle(move || set_now.set(web_sys::js_sys::Date::now()), Duration::from_secs(1)) {
        on_cleanup(move || handle.clear());
    }
    now
}

pub fn parse_time(rfc3339: &str) -> Option<f64> {
    let ms = web_sys::js_sys::Date::parse(rfc3339);
    (!ms.is_nan()).then_some(ms)
}

pub fn ago(then_ms: f64, now_ms: f64) -> String {
    let secs = ((now_ms - then_ms) / 1000.0).max(0.0) as u64;
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

/// "in 4 min" for a time to come, "due now" once it has come.
pub fn until(then_ms: f64, now_ms: f64) -> String {
    let secs = ((then_ms - now_ms) / 1000.0).ceil();
    if secs <= 0.0 {
        return "due now".to_owned();
    }
    let secs = secs as u64;
    match secs {
        0..60 => format!("in {secs} s"),
        60..3600 => format!("in {} min", secs / 60),
        3600..86400 => format!("in {} h", secs / 3600),
        _ => format!("in {} d", secs / 86400),
    }
}

/// "12 s ago" for an RFC 3339 time, or `never`.
pub fn ago_text(time: Option<&str>, now_ms: f64) -> String {
    time.and_then(parse_time).map(|t| ago(t, now_ms)).unwrap_or_else(|| "never".to_owned())
}
