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

/// "2026-11-24 14:03:12 UTC" for an RFC 3339 time (any offset), or the text
/// as given when it is not a time. Computed here rather than with the
/// browser's date getters: each of those is one more import in the first load.
pub fn utc_time(rfc3339: &str) -> String {
    let Some(ms) = parse_time(rfc3339) else { return rfc3339.to_owned() };
    let secs = (ms / 1000.0).floor() as i64;
    let (days, time) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day number.
    let z = days + 719_468;
    let (era, day_of_era) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", time / 3600, time % 3600 / 60, time % 60)
}

/// How long something lasted, two units at most: "45 s", "12 min 5 s",
/// "3 h 20 min", "2 d 4 h".
pub fn span(secs: u64) -> String {
    let (days, hours, minutes, seconds) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min {seconds} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// The span from an RFC 3339 time to `now_ms`, or `—` when it is not a time.
pub fn span_since(rfc3339: &str, now_ms: f64) -> String {
    parse_time(rfc3339).map(|t| span(((now_ms - t) / 1000.0).max(0.0) as u64)).unwrap_or_else(|| "—".to_owned())
}
