//! API keys: personal keys users create for scripts, and the keys Warden
//! makes for rules (a rule runs as the user who last saved it). Only a hash
//! of a secret is stored. A rule's replaced key is never invalidated in
//! place: it goes to the invalidation queue, which lets work in flight finish
//! (reference 004; `tasks::api_key_invalidation`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sqlx::{Any, Executor};
use warden_core::api_keys::{ApiKeyInfo, ApiKeyType, InvalidationReason, effective_roles};
use warden_core::authz::Role;

use crate::auth::{AuthKind, AuthUser, secrets_equal, sha256_hex};
use crate::crypto::Cipher;
use crate::db::{Db, now_ms};
use crate::store;
use crate::store::api_keys::{ActionParamsRow, ApiKeyRow, NewKey};

/// A key's id and secret, as the caller must present them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.id)
    }
}

impl Credentials {
    /// A new key: the one generator for personal, rule, enrollment and agent keys.
    pub fn generate() -> Credentials {
        let mut id = [0u8; 15];
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        Credentials { id: URL_SAFE_NO_PAD.encode(id), secret: URL_SAFE_NO_PAD.encode(secret) }
    }

    /// `base64(id:secret)`: what follows `Authorization: ApiKey `.
    pub fn encoded(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.id, self.secret))
    }

    pub fn decode(encoded: &str) -> Option<Credentials> {
        let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = text.split_once(':')?;
        Some(Credentials { id: id.to_owned(), secret: secret.to_owned() })
    }
}

fn roles_json(roles: &[Role]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".into())
}

/// The roles a key is limited to, as stored in its `roles` column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoleLimits {
    /// `[]`, how a key without limits is stored: all of its owner's roles.
    Unlimited,
    Only(Vec<Role>),
    /// Limits were stored but cannot be read (not a JSON array of role
    /// names, or a role Warden does not know): the key gets no roles, never
    /// more than it was given.
    Unreadable,
}

impl RoleLimits {
    fn of(row: &ApiKeyRow) -> RoleLimits {
        match serde_json::from_str::<Vec<Role>>(&row.roles) {
            Ok(roles) if roles.is_empty() => RoleLimits::Unlimited,
            Ok(roles) => RoleLimits::Only(roles),
            Err(err) => {
                tracing::warn!(api_key = %row.id, error = %err, "the API key's stored role limits cannot be read: it gets no roles");
                RoleLimits::Unreadable
            }
        }
    }

    /// What the key may do now, given its owner's roles.
    fn effective(&self, owner_roles: &[Role]) -> Vec<Role> {
        match self {
            RoleLimits::Unlimited => effective_roles(&[], owner_roles),
            RoleLimits::Only(roles) => effective_roles(roles, owner_roles),
            RoleLimits::Unreadable => Vec::new(),
        }
    }

    /// For listings, where empty reads "all of the owner's" (an unreadable
    /// key lists as that too; `authenticate` gives it none).
    fn listed(self) -> Vec<Role> {
        match self {
            RoleLimits::Only(roles) => roles,
            RoleLimits::Unlimited | RoleLimits::Unreadable => Vec::new(),
        }
    }
}

pub fn to_info(row: &ApiKeyRow) -> ApiKeyInfo {
    ApiKeyInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        creation: row.created_at,
        expiration: row.expires_at,
        invalidated: row.invalidated_at.is_some(),
        invalidation: row.invalidated_at,
        username: row.username.clone(),
        roles: RoleLimits::of(row).listed(),
        // Written from the same enum; an unreadable one is treated as a rule's (never listed as personal).
        key_type: ApiKeyType::parse(&row.key_type).unwrap_or(ApiKeyType::Rule),
    }
}

/// Personal keys, newest first: `owner`'s, or everyone's with `None`.
pub async fn list_personal(db: &Db, owner: Option<&str>) -> sqlx::Result<Vec<ApiKeyInfo>> {
    Ok(store::api_keys::list_personal(db, owner).await?.iter().map(to_info).collect())
}

pub struct NewPersonalKey<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub roles: &'a [Role],
    pub expires_at: Option<i64>,
}

pub async fn create_personal<'e>(db: impl Executor<'e, Database = Any>, key: NewPersonalKey<'_>) -> sqlx::Result<Credentials> {
    let credentials = Credentials::generate();
    let hash = sha256_hex(credentials.secret.as_bytes());
    let roles = roles_json(key.roles);
    let row = NewKey {
        id: &credentials.id,
        name: key.name,
        user_id: key.user_id,
        key_type: ApiKeyType::Personal.as_str(),
        rule_id: None,
        roles: &roles,
        secret_hash: &hash,
        created_at: now_ms(),
        expires_at: key.expires_at,
    };
    store::api_keys::insert(db, &row).await?;
    Ok(credentials)
}

/// The user a key acts for, if the key is known, its secret matches, it is
/// neither invalidated nor expired, and its owner is enabled. Rule keys work
/// here too: an action run on a rule's behalf authenticates this way.
pub async fn authenticate(db: &Db, credentials: &Credentials) -> sqlx::Result<Option<AuthUser>> {
    let Some(key) = store::api_keys::get(db, &credentials.id).await? else { return Ok(None) };
    let now = now_ms();
    let hash = sha256_hex(credentials.secret.as_bytes());
    if !secrets_equal(&key.secret_hash, &hash) || key.invalidated_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let Some(owner) = store::users::by_id(db, &key.user_id).await?.filter(|u| u.enabled()) else { return Ok(None) };
    Ok(Some(AuthUser {
        roles: RoleLimits::of(&key).effective(&owner.roles()),
        id: owner.id,
        username: owner.username,
        full_name: owner.full_name,
        kind: AuthKind::ApiKey,
    }))
}

/// Invalidates keys at a user's request, at once: "An invalidated key is 401
/// at once" (the user meant it). Returns (invalidated now, already invalid,
/// not found or not the caller's).
pub async fn invalidate_by_request(db: &Db, ids: &[String], caller_id: &str, admin: bool) -> sqlx::Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let (mut invalidated, mut previously, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    let now = now_ms();
    let mut tx = db.begin().await?;
    for id in ids {
        let key = store::api_keys::get(&mut *tx, id).await?;
        match key {
            Some(key) if ApiKeyType::parse(&key.key_type) == Some(ApiKeyType::Personal) && (admin || key.user_id == caller_id) => {
                if store::api_keys::invalidate(&mut *tx, id, now).await? {
                    invalidated.push(id.clone());
                } else {
                    previously.push(id.clone());
                }
                store::api_keys::dequeue(&mut *tx, id).await?;
            }
            _ => missing.push(id.clone()),
        }
    }
    tx.commit().await?;
    Ok((invalidated, previously, missing))
}

/// Creates the key a rule runs with, on behalf of `user_id` (who saved it).
pub async fn create_for_rule<'e>(db: impl Executor<'e, Database = Any>, rule_id: &str, user_id: &str) -> sqlx::Result<Credentials> {
    let credentials = Credentials::generate();
    let hash = sha256_hex(credentials.secret.as_bytes());
    let name = format!("Warden rule {rule_id}");
    let row = NewKey {
        id: &credentials.id,
        name: &name,
        user_id,
        key_type: ApiKeyType::Rule.as_str(),
        rule_id: Some(rule_id),
        roles: "[]",
        secret_hash: &hash,
        created_at: now_ms(),
        expires_at: None,
    };
    store::api_keys::insert(db, &row).await?;
    Ok(credentials)
}

/// A rule changed owner: it gets a key of the new owner's, and the old key
/// is queued for invalidation, never invalidated in place (a run or an
/// action may hold it). Run inside the transaction that saves the rule.
pub async fn rotate_for_rule(tx: &mut sqlx::AnyConnection, rule_id: &str, new_owner_id: &str) -> sqlx::Result<Credentials> {
    if let Some(old) = store::api_keys::current_for_rule(&mut *tx, rule_id).await? {
        store::api_keys::enqueue(&mut *tx, &old.id, InvalidationReason::Rotated.as_str(), now_ms()).await?;
    }
    create_for_rule(&mut *tx, rule_id, new_owner_id).await
}

/// A rule was saved by `saved_by`: it runs as whoever saved it last. The same
/// owner keeps the rule's key (`None`); anyone else gets a new key, and the
/// old one is queued (`rotate_for_rule`). The caller keeps the returned
/// credentials with the rule, encrypted.
pub async fn rule_saved_by(tx: &mut sqlx::AnyConnection, rule_id: &str, saved_by: &str) -> sqlx::Result<Option<Credentials>> {
    match store::api_keys::current_for_rule(&mut *tx, rule_id).await? {
        Some(current) if current.user_id == saved_by => Ok(None),
        _ => rotate_for_rule(tx, rule_id, saved_by).await.map(Some),
    }
}

/// A rule is gone (or a user asked for its key to go): queue its key.
pub async fn retire_for_rule(tx: &mut sqlx::AnyConnection, rule_id: &str, reason: InvalidationReason) -> sqlx::Result<Option<String>> {
    let Some(old) = store::api_keys::current_for_rule(&mut *tx, rule_id).await? else { return Ok(None) };
    store::api_keys::enqueue(&mut *tx, &old.id, reason.as_str(), now_ms()).await?;
    Ok(Some(old.id))
}

/// Queues an action to run on a rule's behalf as a one-off task of
/// `task_type`: the key's id in clear (the queue must see it), its secret
/// encrypted and bound to the parameters' row. Returns the task's id.
pub async fn schedule_action(
    tx: &mut sqlx::AnyConnection,
    tasks: &crate::tasks::TaskManager,
    cipher: &Cipher,
    task_type: &str,
    key: &Credentials,
    params: &serde_json::Value,
) -> anyhow::Result<String> {
    let params_id = uuid::Uuid::new_v4().to_string();
    let task_id = tasks.schedule(&mut *tx, task_type, &serde_json::json!({ "action_task_params_id": params_id }), now_ms()).await?;
    let row = ActionParamsRow {
        api_key_secret: cipher.encrypt(&key.secret, &params_id)?,
        id: params_id,
        task_id: task_id.clone(),
        api_key_id: key.id.clone(),
        params: params.to_string(),
    };
    store::api_keys::insert_action_params(&mut *tx, &row, now_ms()).await?;
    Ok(task_id)
}

/// What an action runner reads back: the key to act with and its params.
pub async fn load_action(db: &Db, cipher: &Cipher, task_params: &serde_json::Value) -> anyhow::Result<(Credentials, serde_json::Value)> {
    let id = task_params.get("action_task_params_id").and_then(|v| v.as_str()).ok_or_else(|| anyhow::anyhow!("task has no action_task_params_id"))?;
    let row = store::api_keys::action_params(db, id).await?.ok_or_else(|| anyhow::anyhow!("action parameters {id} are gone"))?;
    let secret = cipher.decrypt(&row.api_key_secret, &row.id)?;
    let params = serde_json::from_str(&row.params).unwrap_or_default();
    Ok((Credentials { id: row.api_key_id, secret }, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_encode_as_elasticsearch_does() {
        let credentials = Credentials::generate();
        assert_eq!(credentials.id.len(), 20);
        let decoded = Credentials::decode(&credentials.encoded()).unwrap();
        assert_eq!(decoded, credentials);
        assert!(!format!("{credentials:?}").contains(&credentials.secret));
        assert_eq!(Credentials::decode("bm8tY29sb24="), None, "base64 of `no-colon`");
        assert_eq!(Credentials::decode("***"), None);
    }

    fn key_with_roles(roles: &str) -> ApiKeyRow {
        ApiKeyRow {
            id: "key-1".into(),
            name: "nightly export".into(),
            user_id: "u-1".into(),
            username: "alice".into(),
            key_type: ApiKeyType::Personal.as_str().into(),
            rule_id: None,
            roles: roles.into(),
            secret_hash: String::new(),
            created_at: 0,
            expires_at: None,
            invalidated_at: None,
        }
    }

    #[test]
    fn a_key_without_limits_has_all_of_its_owners_roles() {
        let owner = [Role::T2Analyst, Role::RuleAuthor];
        let key = key_with_roles(&roles_json(&[]));
        assert_eq!(RoleLimits::of(&key), RoleLimits::Unlimited);
        assert_eq!(RoleLimits::of(&key).effective(&owner), owner);
        assert_eq!(to_info(&key).roles, Vec::<Role>::new());
    }

    #[test]
    fn a_limited_key_has_the_limits_its_owner_still_holds() {
        let key = key_with_roles(&roles_json(&[Role::T2Analyst, Role::RuleAuthor]));
        assert_eq!(RoleLimits::of(&key).effective(&[Role::T2Analyst]), [Role::T2Analyst]);
        assert_eq!(RoleLimits::of(&key).effective(&[Role::Viewer]), Vec::<Role>::new());
        assert_eq!(to_info(&key).roles, [Role::T2Analyst, Role::RuleAuthor]);
    }

    #[test]
    fn unreadable_limits_give_no_roles() {
        let owner = [Role::Superuser, Role::T2Analyst];
        for stored in ["", "not json", "null", "{}", "\"t2_analyst\"", "[\"wizard\"]", "[\"t2_analyst\", \"wizard\"]", "[1]", "[\"T2Analyst\"]"] {
            let key = key_with_roles(stored);
            assert_eq!(RoleLimits::of(&key), RoleLimits::Unreadable, "{stored}");
            assert_eq!(RoleLimits::of(&key).effective(&owner), Vec::<Role>::new(), "{stored}");
        }
    }

    #[test]
    fn comparing_hashes() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
