//! API keys: the shapes of `/internal/security/api_key` (Elasticsearch's), the
//! expiration syntax, which roles a key may carry, and the invalidation
//! queue's rule (reference 004: a key is invalidated only once no work in
//! flight can still need it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authz::Role;

/// `POST /internal/security/api_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Not blank (at least one character that is not Unicode white space);
    /// at most 256 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]")
    )]
    pub name: String,
    /// `30m`, `12h`, `7d`…: a whole number of seconds (`s`), minutes (`m`),
    /// hours (`h`) or days (`d`), from one minute to ten years (`3650d`), as
    /// the pattern spells out. None: the key does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^0*(([1-9][0-9]{0,2}|[12][0-9]{3}|3[0-5][0-9]{2}|36[0-4][0-9]|3650)d|([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-6][0-9]{3}|87[0-5][0-9]{2}|87600)h|([1-9][0-9]{0,5}|[1-4][0-9]{6}|5[01][0-9]{5}|52[0-4][0-9]{4}|525[0-5][0-9]{3}|5256000)m|([6-9][0-9]|[1-9][0-9]{2,7}|[12][0-9]{8}|30[0-9]{7}|31[0-4][0-9]{6}|315[0-2][0-9]{5}|3153[0-5][0-9]{4}|315360000)s)$"
        )
    )]
    pub expiration: Option<String>,
    /// Keys are Warden role names the key is limited to (values may be `{}`),
    /// each a role the caller holds (400 otherwise); none or empty: the key
    /// acts with all of its owner's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub role_descriptors: Option<BTreeMap<String, serde_json::Value>>,
}

/// The answer to a create: the secret appears here and nowhere else, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApiKeyResponse {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
    pub api_key: String,
    /// `base64(id:api_key)`, what goes after `Authorization: ApiKey `.
    pub encoded: String,
}

/// One key in `GET /internal/security/api_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub creation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
    pub invalidated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<i64>,
    /// The owner.
    pub username: String,
    /// The roles the key is limited to; empty: all of its owner's.
    pub roles: Vec<Role>,
    /// `personal`, or `rule` for a key Warden made to run a rule.
    #[serde(rename = "type")]
    pub key_type: ApiKeyType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}

/// `DELETE /internal/security/api_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InvalidateApiKeyRequest {
    /// 1 to 1,000 key ids.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidateApiKeyResponse {
    pub invalidated_api_keys: Vec<String>,
    pub previously_invalidated_api_keys: Vec<String>,
    pub error_count: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_details: Vec<InvalidateError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidateError {
    #[serde(rename = "type")]
    pub error_type: String,
    pub reason: String,
}

pub const MAX_NAME_LEN: usize = 256;

/// Checks a create request against its caller's roles; returns the roles the
/// key is limited to (empty: all of the owner's). A key can never hold a role
/// its owner does not.
pub fn validate_create(request: &CreateApiKeyRequest, owner_roles: &[Role]) -> Result<Vec<Role>, String> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err("[request body.name]: must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("[request body.name]: must be at most {MAX_NAME_LEN} characters"));
    }
    if let Some(expiration) = &request.expiration {
        parse_expiration_ms(expiration).map_err(|e| format!("[request body.expiration]: {e}"))?;
    }
    let mut roles = Vec::new();
    for name in request.role_descriptors.iter().flat_map(|d| d.keys()) {
        let role = Role::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("[request body.role_descriptors]: unknown role `{name}`; expected one of: {}", known.join(", "))
        })?;
        if !owner_roles.contains(&role) {
            return Err(format!("[request body.role_descriptors]: you do not hold the role `{name}`, so a key of yours cannot"));
        }
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// What a key may do now: the roles it is limited to that its owner still
/// holds (taking a role from the owner takes it from their keys), or all of
/// the owner's roles for an unlimited key.
pub fn effective_roles(key_roles: &[Role], owner_roles: &[Role]) -> Vec<Role> {
    if key_roles.is_empty() {
        return owner_roles.to_vec();
    }
    key_roles.iter().copied().filter(|role| owner_roles.contains(role)).collect()
}

/// `90s`, `30m`, `12h`, `7d` (Elasticsearch's time units from seconds up) in
/// milliseconds; at least a minute, at most ten years.
pub fn parse_expiration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as 30m, 12h or 7d"))?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` is not a duration such as 30m, 12h or 7d")),
    };
    let ms = amount.checked_mul(unit_ms).ok_or_else(|| format!("`{text}` is too long"))?;
    if ms < 60_000 {
        return Err(format!("`{text}` is shorter than a minute"));
    }
    if ms > 10 * 365 * 86_400_000 {
        return Err(format!("`{text}` is longer than ten years"));
    }
    Ok(ms)
}

/// Why a key waits in the invalidation queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InvalidationReason {
    /// A rule's owner changed and the rule got a new key.
    Rotated,
    /// The rule the key ran was deleted.
    RuleDeleted,
    /// Someone asked for this key to go: no grace period.
    UserRequest,
}

impl InvalidationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidationReason::Rotated => "rotated",
            InvalidationReason::RuleDeleted => "rule_deleted",
            InvalidationReason::UserRequest => "user_request",
        }
    }

    pub fn parse(text: &str) -> Option<InvalidationReason> {
        [InvalidationReason::Rotated, InvalidationReason::RuleDeleted, InvalidationReason::UserRequest].into_iter().find(|r| r.as_str() == text)
    }
}

/// The queue's rule for one key at one run of the invalidation task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedKeyDecision {
    Invalidate,
    /// Queued less than `removal_delay` ago: a rule run that read the key just
    /// before it was replaced may still be using it.
    WaitForDelay,
    /// Pending, running or retrying work holds the key's secret: invalidating
    /// it now would break that work (reference 004, cases 2 to 4).
    KeepReferenced,
}

/// A key leaves the queue once it has waited `removal_delay` (skipped when a
/// user asked for it) and no queued action still references it.
pub fn decide(reason: InvalidationReason, queued_at_ms: i64, now_ms: i64, removal_delay_ms: i64, referenced: bool) -> QueuedKeyDecision {
    if referenced {
        QueuedKeyDecision::KeepReferenced
    } else if reason != InvalidationReason::UserRequest && queued_at_ms + removal_delay_ms > now_ms {
        QueuedKeyDecision::WaitForDelay
    } else {
        QueuedKeyDecision::Invalidate
    }
}

/// The cut-off the SQL uses for `decide`: keys queued at or before it have
/// waited long enough.
pub fn queued_before_ms(now_ms: i64, removal_delay_ms: i64) -> i64 {
    now_ms - removal_delay_ms
}

crate::text_enum! {
    /// Whose key it is: a user's own, or the one Warden keeps for a rule.
    ApiKeyType { Personal = "personal", Rule = "rule" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use InvalidationReason::*;
    use QueuedKeyDecision::*;

    #[test]
    fn expirations() {
        assert_eq!(parse_expiration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_expiration_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_expiration_ms("90s"), Ok(90_000));
        assert_eq!(parse_expiration_ms(" 12h "), Ok(43_200_000));
        for bad in ["", "d", "7", "7 days", "-1d", "1.5h", "10s", "1w", "99999999999999999999d", "4000d"] {
            assert!(parse_expiration_ms(bad).is_err(), "{bad}");
        }
    }

    fn request(name: &str, roles: &[&str]) -> CreateApiKeyRequest {
        let descriptors = roles.iter().map(|r| ((*r).to_owned(), serde_json::json!({}))).collect();
        CreateApiKeyRequest { name: name.into(), expiration: None, role_descriptors: Some(descriptors) }
    }

    #[test]
    fn a_key_never_holds_more_than_its_owner() {
        let owner = [Role::T2Analyst, Role::RuleAuthor];
        assert_eq!(validate_create(&request("ci", &[]), &owner), Ok(vec![]));
        assert_eq!(validate_create(&request("ci", &["rule_author"]), &owner), Ok(vec![Role::RuleAuthor]));
        let err = validate_create(&request("ci", &["superuser"]), &owner).unwrap_err();
        assert!(err.contains("do not hold the role `superuser`"), "{err}");
        let err = validate_create(&request("ci", &["root"]), &owner).unwrap_err();
        assert!(err.contains("unknown role `root`"), "{err}");
        assert!(validate_create(&request("  ", &[]), &owner).unwrap_err().contains("body.name"));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(validate_create(&request(&long, &[]), &owner).is_err());
        let bad_expiry = CreateApiKeyRequest { expiration: Some("soon".into()), ..request("ci", &[]) };
        assert!(validate_create(&bad_expiry, &owner).unwrap_err().contains("body.expiration"));
    }

    #[test]
    fn taking_a_role_from_the_owner_takes_it_from_the_key() {
        assert_eq!(effective_roles(&[], &[Role::T2Analyst]), vec![Role::T2Analyst]);
        assert_eq!(effective_roles(&[Role::T2Analyst], &[Role::T2Analyst, Role::RuleAuthor]), vec![Role::T2Analyst]);
        assert_eq!(effective_roles(&[Role::T2Analyst], &[Role::Viewer]), vec![]);
    }

    #[test]
    fn the_queue_rule() {
        let delay = 3_600_000;
        let cases: &[(InvalidationReason, i64, i64, bool, QueuedKeyDecision, &str)] = &[
            (Rotated, 0, delay, false, Invalidate, "waited exactly the delay"),
            (Rotated, 0, delay - 1, false, WaitForDelay, "a rule run may still hold it"),
            (Rotated, 0, delay * 5, true, KeepReferenced, "a queued action needs it, however old"),
            (RuleDeleted, 0, delay - 1, false, WaitForDelay, "deletion waits like rotation"),
            (UserRequest, 0, 0, false, Invalidate, "the user meant it: no delay"),
            (UserRequest, 0, 0, true, KeepReferenced, "but work in flight still finishes"),
        ];
        for &(reason, queued_at, now, referenced, expected, why) in cases {
            assert_eq!(decide(reason, queued_at, now, delay, referenced), expected, "{why}");
            if !referenced && reason != UserRequest {
                assert_eq!(queued_at <= queued_before_ms(now, delay), expected == Invalidate, "SQL cut-off agrees: {why}");
            }
        }
    }

    #[test]
    fn reasons_round_trip() {
        for reason in [Rotated, RuleDeleted, UserRequest] {
            assert_eq!(InvalidationReason::parse(reason.as_str()), Some(reason));
        }
    }

    proptest::proptest! {
        /// Client text never panics the parser, and whatever it accepts is
        /// within a minute and ten years.
        #[test]
        fn expiration_parsing_is_total_and_bounded(text in "\\PC{0,40}|[0-9]{1,25}[smhdw ]?") {
            if let Ok(ms) = parse_expiration_ms(&text) {
                proptest::prop_assert!((60_000..=10 * 365 * 86_400_000).contains(&ms), "{text}: {ms}");
            }
        }

        /// Every valid duration reads back as the amount times its unit.
        #[test]
        fn expiration_round_trip(amount in 1i64..=3650, unit in proptest::sample::select(vec![("s", 1_000i64), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)])) {
            let ms = amount * unit.1;
            let parsed = parse_expiration_ms(&format!("{amount}{}", unit.0));
            if (60_000..=10 * 365 * 86_400_000).contains(&ms) {
                proptest::prop_assert_eq!(parsed, Ok(ms));
            } else {
                proptest::prop_assert!(parsed.is_err());
            }
        }
    }
}
