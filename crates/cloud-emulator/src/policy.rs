//! The policy simulator's rules, pure: how an action is decided against a
//! principal's allow and deny lists (IAM's evaluation: an explicit deny
//! wins, then an allow, else the implicit deny), how action patterns match,
//! and how a result list is paged with `MaxItems` and `Marker`.

use std::ops::Range;

use serde::Serialize;

/// The longest action name or pattern (IAM's `ActionNameType`: 3 to 128).
pub const ACTION_MAX: usize = 128;
/// The most action names one simulation may name.
pub const MAX_ACTIONS: usize = 1000;
/// `MaxItems` when the request leaves it out (IAM's default).
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// The largest `MaxItems` IAM accepts.
pub const MAX_ITEMS_LIMIT: usize = 1000;

/// `EvalDecision`, spelled as IAM spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ImplicitDeny => "implicitDeny",
            Decision::ExplicitDeny => "explicitDeny",
        }
    }
}

/// Decides `action` for a principal: any matching deny → `explicitDeny`;
/// otherwise any matching allow → `allowed`; otherwise `implicitDeny`.
pub fn decide(allow: &[String], deny: &[String], action: &str) -> Decision {
    if deny.iter().any(|pattern| matches(pattern, action)) {
        Decision::ExplicitDeny
    } else if allow.iter().any(|pattern| matches(pattern, action)) {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

/// Whether an IAM action pattern matches an action: without case, `*`
/// matching any run of characters (also none) and `?` exactly one.
pub fn matches(pattern: &str, action: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let action: Vec<char> = action.chars().flat_map(char::to_lowercase).collect();
    // The classic linear glob: remember the last `*` and where it resumed.
    let (mut p, mut a) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while a < action.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, a));
                p += 1;
            }
            Some(&c) if c == '?' || c == action[a] => {
                p += 1;
                a += 1;
            }
            _ => match star {
                Some((star_p, star_a)) => {
                    p = star_p + 1;
                    a = star_a + 1;
                    star = Some((star_p, star_a + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// An action name or pattern as a config, a request or an admin call may
/// give it: not blank, at most [`ACTION_MAX`] characters, no white space.
pub fn check_action(action: &str) -> Result<(), String> {
    if action.is_empty() {
        return Err("an action name must not be empty".into());
    }
    if action.chars().count() > ACTION_MAX {
        return Err(format!("action name {action:?} is longer than {ACTION_MAX} characters"));
    }
    if action.chars().any(char::is_whitespace) {
        return Err(format!("action name {action:?} must not contain white space"));
    }
    Ok(())
}

/// The page of `total` results a request asks for: its range, and the
/// `Marker` of the next page when there is one. A marker is the position of
/// the next result (opaque to clients, and only good for the same request).
pub fn page(total: usize, max_items: usize, marker: Option<&str>) -> Result<(Range<usize>, Option<String>), String> {
    let start = match marker {
        None => 0,
        Some(marker) => match marker.parse::<usize>() {
            Ok(start) if start > 0 && start < total => start,
            _ => return Err(format!("Invalid Marker {marker:?}: pass the Marker of the previous page of the same request")),
        },
    };
    let end = start.saturating_add(max_items.max(1)).min(total);
    let next = (end < total).then(|| end.to_string());
    Ok((start..end, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_explicit_deny_wins_then_an_allow_then_the_implicit_deny() {
        let allow = list(&["s3:*", "cloudtrail:LookupEvents"]);
        let deny = list(&["s3:DeleteBucket"]);
        for (action, decision) in [
            ("s3:GetObject", Decision::Allowed),
            ("cloudtrail:LookupEvents", Decision::Allowed),
            ("CLOUDTRAIL:lookupevents", Decision::Allowed),
            ("s3:DeleteBucket", Decision::ExplicitDeny),
            ("sqs:ReceiveMessage", Decision::ImplicitDeny),
        ] {
            assert_eq!(decide(&allow, &deny, action), decision, "{action}");
        }
        assert_eq!(decide(&[], &[], "s3:GetObject"), Decision::ImplicitDeny);
    }

    #[test]
    fn patterns_match_as_iam_policies_do() {
        for (pattern, action, expected) in [
            ("s3:GetObject", "s3:GetObject", true),
            ("s3:GetObject", "s3:getobject", true),
            ("s3:GetObject", "s3:GetObjectAcl", false),
            ("s3:Get*", "s3:GetObjectAcl", true),
            ("s3:Get*", "s3:Get", true),
            ("s3:Get*", "s3:PutObject", false),
            ("*", "anything:AtAll", true),
            ("s3:*Object", "s3:GetObject", true),
            ("s3:*Object", "s3:GetObjectAcl", false),
            ("s3:*O*t", "s3:GetObjectAclObject", true),
            ("s3:?etObject", "s3:GetObject", true),
            ("s3:?etObject", "s3:etObject", false),
            ("Microsoft.Insights/*/Read", "Microsoft.Insights/eventtypes/values/Read", true),
            ("", "s3:GetObject", false),
        ] {
            assert_eq!(matches(pattern, action), expected, "{pattern} ~ {action}");
        }
    }

    #[test]
    fn action_names_are_bounded() {
        assert!(check_action("s3:GetObject").is_ok());
        assert!(check_action("").is_err());
        assert!(check_action("s3 GetObject").is_err());
        assert!(check_action(&"a".repeat(ACTION_MAX)).is_ok());
        assert!(check_action(&"a".repeat(ACTION_MAX + 1)).is_err());
    }

    #[test]
    fn pages_follow_the_marker_to_the_end() {
        assert_eq!(page(3, 100, None).unwrap(), (0..3, None));
        assert_eq!(page(250, 100, None).unwrap(), (0..100, Some("100".into())));
        assert_eq!(page(250, 100, Some("100")).unwrap(), (100..200, Some("200".into())));
        assert_eq!(page(250, 100, Some("200")).unwrap(), (200..250, None));
        assert_eq!(page(2, 1, Some("1")).unwrap(), (1..2, None));
        for bad in ["0", "250", "-1", "x", ""] {
            assert!(page(250, 100, Some(bad)).is_err(), "{bad}");
        }
    }
}
