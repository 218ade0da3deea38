//! Who is calling: server-side sessions, HTTP Basic for scripts, API keys,
//! sign-in throttling, and the `AuthUser` extractor every protected handler
//! names in its signature. Passwords themselves are checked in `passwords`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use warden_core::authz::{Privilege, Role, has_privilege};

use crate::AppState;
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::store;

pub const SESSION_COOKIE: &str = "warden_sid";

/// Sign-in throttling: at most this many failures per window, per user name
/// and per client address.
pub const MAX_FAILURES_PER_USER: i64 = 10;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 50;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long a verified Basic credential is trusted without running argon2.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
const BASIC_CACHE_MAX: usize = 10_000;

/// A session is marked as seen at most this often (one write per minute, not
/// one per request).
const TOUCH_EVERY_MS: i64 = 60_000;

pub fn sha256_hex(input: &[u8]) -> String {
    Sha256::digest(input).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares a secret (or its hash) with what was presented, in time that does
/// not depend on where they differ.
pub fn secrets_equal(stored: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(stored.as_bytes().ct_eq(presented.as_bytes()))
}

/// Starts a session for `user_id` (ending the one `replacing` names, if
/// any); returns its token, of which only a hash is stored. A new token at
/// every sign-in: a session id planted before sign-in is useless.
pub async fn start_session(state: &AppState, user_id: &str, replacing: Option<&str>) -> Result<String> {
    let (token, token_hash) = new_session_token();
    let now = now_ms();
    let expires_at = now.saturating_add(state.config.session_lifetime.as_millis() as i64);
    let mut tx = state.db.begin().await?;
    if let Some(old) = replacing {
        store::sessions::delete(&mut *tx, &sha256_hex(old.as_bytes())).await?;
    }
    store::sessions::insert(&mut *tx, &token_hash, user_id, now, expires_at).await?;
    tx.commit().await?;
    Ok(token)
}

/// Ends a session at once: its cookie is useless from now on.
pub async fn end_session(state: &AppState, token: &str) -> Result<()> {
    store::sessions::delete(&state.db, &sha256_hex(token.as_bytes())).await?;
    Ok(())
}

/// Every local user.
pub async fn list_users(state: &AppState) -> Result<Vec<warden_core::api::UserSummary>> {
    let users = store::users::list(&state.db).await?;
    Ok(users
        .into_iter()
        .map(|u| warden_core::api::UserSummary { roles: u.roles(), enabled: u.enabled(), username: u.username, full_name: u.full_name })
        .collect())
}

/// A fresh session token and the hash that is stored for it.
pub fn new_session_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

/// Seconds until a throttled key may try again, or `None` if it may now.
pub fn retry_after(window: Option<store::login_failures::Window>, limit: i64, now_ms: i64) -> Option<u64> {
    let window = window?;
    if window.failures < limit {
        return None;
    }
    let ends = window.window_started_at + FAILURE_WINDOW.as_millis() as i64;
    (ends > now_ms).then(|| ((ends - now_ms) as u64).div_ceil(1000))
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Session,
    Basic,
    ApiKey,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Session => "session",
            AuthKind::Basic => "basic",
            AuthKind::ApiKey => "api_key",
        }
    }
}

/// The authenticated caller. Naming it in a handler's arguments makes the
/// route require authentication; `require` checks one privilege.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub full_name: Option<String>,
    pub roles: Vec<Role>,
    pub kind: AuthKind,
}

impl AuthUser {
    pub fn require(&self, privilege: Privilege) -> Result<()> {
        if has_privilege(&self.roles, privilege) { Ok(()) } else { Err(ApiError::Forbidden(privilege)) }
    }
}

fn unauthorized() -> ApiError {
    ApiError::Unauthorized("Unauthorized".into())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(token) = session_cookie(parts) {
            return session_user(state, &token).await?.ok_or_else(unauthorized);
        }
        if let Some((username, password)) = basic_credentials(parts) {
            let client = ClientInfo::from_request_parts(parts, state).await?;
            return basic_user(state, client.address, username, password).await?.ok_or_else(unauthorized);
        }
        if let Some(credentials) = api_key_credentials(parts) {
            let client = ClientInfo::from_request_parts(parts, state).await?;
            return api_key_user(state, client.address, &credentials).await?.ok_or_else(unauthorized);
        }
        Err(unauthorized())
    }
}

pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `Authorization: ApiKey base64(id:secret)`, as Kibana and Elasticsearch take it.
pub fn api_key_credentials(parts: &Parts) -> Option<crate::api_keys::Credentials> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("ApiKey ").or_else(|| value.strip_prefix("apikey "))?;
    crate::api_keys::Credentials::decode(encoded)
}

fn to_auth_user(row: store::users::UserRow, kind: AuthKind) -> AuthUser {
    AuthUser { roles: row.roles(), id: row.id, username: row.username, full_name: row.full_name, kind }
}

async fn session_user(state: &AppState, token: &str) -> Result<Option<AuthUser>> {
    let hash = sha256_hex(token.as_bytes());
    let Some(session) = store::sessions::get(&state.db, &hash).await? else { return Ok(None) };
    let now = now_ms();
    if !session_alive(&session, now, state.config.session_idle_timeout) {
        store::sessions::delete(&state.db, &hash).await?;
        return Ok(None);
    }
    let Some(user) = store::users::by_id(&state.db, &session.user_id).await?.filter(|u| u.enabled()) else {
        return Ok(None);
    };
    if now - session.last_seen_at >= TOUCH_EVERY_MS {
        store::sessions::touch(&state.db, &hash, now).await?;
    }
    Ok(Some(to_auth_user(user, AuthKind::Session)))
}

/// A session lives until its absolute expiry, and only while it is used at
/// least once per idle timeout.
pub fn session_alive(session: &store::sessions::SessionRow, now_ms: i64, idle_timeout: Duration) -> bool {
    session.expires_at > now_ms && session.last_seen_at + idle_timeout.as_millis() as i64 > now_ms
}

/// Verified Basic credentials, keyed by the SHA-256 of `user:password`. The
/// entry remembers the password hash it was checked against, so a password
/// change or a disabled user takes effect on the next request.
#[derive(Default)]
pub struct BasicCache {
    entries: Mutex<HashMap<String, (String, String, Instant)>>,
}

impl BasicCache {
    fn get(&self, key: &str) -> Option<(String, String)> {
        let entries = self.entries.lock().ok()?;
        let (user_id, hash, at) = entries.get(key)?;
        (at.elapsed() < BASIC_CACHE_TTL).then(|| (user_id.clone(), hash.clone()))
    }

    fn put(&self, key: String, user_id: String, hash: String) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= BASIC_CACHE_MAX {
                entries.retain(|_, (_, _, at)| at.elapsed() < BASIC_CACHE_TTL);
                if entries.len() >= BASIC_CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(key, (user_id, hash, Instant::now()));
        }
    }
}

async fn basic_user(state: &AppState, client: IpAddr, username: String, password: String) -> Result<Option<AuthUser>> {
    let key = sha256_hex(format!("{username}:{password}").as_bytes());
    if let Some((user_id, verified_hash)) = state.basic_cache.get(&key) {
        // Verified recently, so no argon2; but a locked-out name or address
        // stays locked out whichever way it signs in.
        refuse_if_throttled(state, &username, client).await?;
        let user = store::users::by_id(&state.db, &user_id).await?;
        if let Some(user) = user.filter(|u| u.enabled() && u.password_hash == verified_hash) {
            return Ok(Some(to_auth_user(user, AuthKind::Basic)));
        }
    }
    let Some(user) = check_password(state, client, &username, password).await? else { return Ok(None) };
    state.basic_cache.put(key, user.id.clone(), user.password_hash.clone());
    Ok(Some(to_auth_user(user, AuthKind::Basic)))
}

/// A wrong API key counts against its client address like a wrong password
/// (not against the key's owner: the secret is 192 random bits, so the limit
/// is there to slow a scan, and counting against the owner would let anyone
/// who saw a key id lock its owner out of signing in).
async fn api_key_user(state: &AppState, client: IpAddr, credentials: &crate::api_keys::Credentials) -> Result<Option<AuthUser>> {
    let now = now_ms();
    let cutoff = now - FAILURE_WINDOW.as_millis() as i64;
    let (address_key, limit) = address_throttle(client);
    let window = store::login_failures::current(&state.db, &address_key, cutoff).await?;
    if let Some(retry_after_secs) = retry_after(window, limit, now) {
        return Err(throttled(retry_after_secs));
    }
    let user = crate::api_keys::authenticate(&state.db, credentials).await?;
    if user.is_none() {
        store::login_failures::record(&state.db, &address_key, now, cutoff).await?;
        tracing::info!(%client, key_id = %credentials.id, "API key refused");
    }
    Ok(user)
}

/// Keyed by a hash, so any name a client sends makes a short key.
fn user_throttle(username: &str) -> (String, i64) {
    (format!("user:{}", sha256_hex(username.to_lowercase().as_bytes())), MAX_FAILURES_PER_USER)
}

fn address_throttle(client: IpAddr) -> (String, i64) {
    (format!("ip:{}", throttle_scope(client)), MAX_FAILURES_PER_ADDRESS)
}

/// What one client controls: an IPv4 address, or an IPv6 /64 (a host is
/// given a whole /64, so counting single IPv6 addresses would let it take a
/// fresh one per attempt).
pub fn throttle_scope(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

fn throttled(retry_after_secs: u64) -> ApiError {
    tracing::warn!(retry_after_secs, "sign-in throttled");
    ApiError::TooManyRequests { message: format!("Too many failed sign-in attempts; try again in {}", wait_text(retry_after_secs)), retry_after_secs }
}

/// "899 seconds" reads worse than "15 minutes".
fn wait_text(secs: u64) -> String {
    match secs {
        0..=1 => "a second".to_owned(),
        2..=119 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

/// 429 if the user name or the client address has used up its attempts.
async fn refuse_if_throttled(state: &AppState, username: &str, client: IpAddr) -> Result<()> {
    let now = now_ms();
    let cutoff = now - FAILURE_WINDOW.as_millis() as i64;
    for (key, limit) in [user_throttle(username), address_throttle(client)] {
        let window = store::login_failures::current(&state.db, &key, cutoff).await?;
        if let Some(retry_after_secs) = retry_after(window, limit, now) {
            return Err(throttled(retry_after_secs));
        }
    }
    Ok(())
}

/// The one way a password is checked, for the login form and HTTP Basic:
/// a place in the password checker's queue (bounded, with a share per
/// address), then one attempt reserved against the user name's and the
/// address's limits (a conditional write each, in one transaction, so
/// concurrent attempts cannot overrun them: at most the limit is ever
/// verified), then argon2. A success gives the attempts back; a failure
/// leaves them counted. `None`: wrong password, unknown or disabled user.
pub async fn check_password(state: &AppState, client: IpAddr, username: &str, password: String) -> Result<Option<store::users::UserRow>> {
    let admitted = state.passwords.admit(throttle_scope(client))?;
    let now = now_ms();
    let cutoff = now - FAILURE_WINDOW.as_millis() as i64;
    let (user_key, address_key) = (user_throttle(username), address_throttle(client));
    let mut tx = state.db.begin().await?;
    for (key, limit) in [&user_key, &address_key] {
        if !store::login_failures::reserve(&mut *tx, key, *limit, now, cutoff).await? {
            tx.rollback().await?;
            let window = store::login_failures::current(&state.db, key, cutoff).await?;
            return Err(throttled(retry_after(window, *limit, now).unwrap_or(1)));
        }
    }
    tx.commit().await?;

    let user = store::users::by_username(&state.db, username).await?;
    let verified = admitted.verify(user.as_ref().map(|u| u.password_hash.clone()), password).await?;
    let Some(user) = user.filter(|u| verified && u.enabled()) else {
        tracing::info!(username, %client, "password check failed");
        return Ok(None);
    };
    let mut tx = state.db.begin().await?;
    store::login_failures::clear(&mut *tx, &user_key.0).await?;
    store::login_failures::release(&mut *tx, &address_key.0).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// Where the request came from, believing `X-Forwarded-*` only from a
/// configured trusted proxy.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub address: IpAddr,
    pub https: bool,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(client_info(&state.config, peer, &parts.headers))
    }
}

pub fn client_info(config: &crate::config::Config, peer: IpAddr, headers: &axum::http::HeaderMap) -> ClientInfo {
    // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
    let peer = peer.to_canonical();
    if !config.is_trusted_proxy(peer) {
        return ClientInfo { address: peer, https: false };
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // The nearest address that is not one of our proxies is the client.
    let forwarded: Vec<IpAddr> = header("x-forwarded-for")
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| part.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
        .collect();
    let address = forwarded.iter().rev().copied().find(|ip| !config.is_trusted_proxy(*ip)).or(forwarded.first().copied()).unwrap_or(peer);
    let https = header("x-forwarded-proto").is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    ClientInfo { address, https }
}

/// Shared by the application and the CLI.
pub type SharedBasicCache = Arc<BasicCache>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::login_failures::Window;

    #[test]
    fn session_tokens_are_random_and_stored_hashed() {
        let (a, a_hash) = new_session_token();
        let (b, _) = new_session_token();
        assert_ne!(a, b);
        assert_eq!(a_hash, sha256_hex(a.as_bytes()));
        assert!(!a_hash.contains(&a));
    }

    #[test]
    fn throttle_waits_until_the_window_ends() {
        let start = 1_000_000;
        let window = |failures| Some(Window { failures, window_started_at: start });
        assert_eq!(retry_after(None, 10, start), None);
        assert_eq!(retry_after(window(9), 10, start + 1), None);
        assert_eq!(retry_after(window(10), 10, start), Some(FAILURE_WINDOW.as_secs()));
        assert_eq!(retry_after(window(10), 10, start + 1), Some(FAILURE_WINDOW.as_secs()));
        let end = start + FAILURE_WINDOW.as_millis() as i64;
        assert_eq!(retry_after(window(50), 10, end), None);
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let scope = |text: &str| throttle_scope(text.parse().unwrap()).to_string();
        assert_eq!(scope("203.0.113.9"), "203.0.113.9");
        assert_eq!(scope("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(scope("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(scope("2001:db8:1:2::1"), scope("2001:db8:1:2:ffff::9"));
        assert_ne!(scope("2001:db8:1:2::1"), scope("2001:db8:1:3::1"));
        let mapped = client_info(&Config::default(), "::ffff:10.0.0.1".parse().unwrap(), &axum::http::HeaderMap::new());
        assert_eq!(mapped.address.to_string(), "10.0.0.1");
    }

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(wait_text(1), "a second");
        assert_eq!(wait_text(45), "45 seconds");
        assert_eq!(wait_text(899), "15 minutes");
        assert_eq!(wait_text(900), "15 minutes");
    }

    #[test]
    fn sessions_die_when_idle_or_too_old() {
        let idle = Duration::from_secs(60);
        let session = |last_seen_at, expires_at| store::sessions::SessionRow { user_id: "u".into(), last_seen_at, expires_at };
        assert!(session_alive(&session(1_000, 100_000), 30_000, idle));
        assert!(!session_alive(&session(1_000, 100_000), 61_000, idle), "idle for longer than the timeout");
        assert!(session_alive(&session(50_000, 100_000), 99_999, idle));
        assert!(!session_alive(&session(99_000, 100_000), 100_000, idle), "past the absolute lifetime");
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let untrusting = Config::default();
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let info = client_info(&untrusting, peer, &headers);
        assert_eq!(info.address, peer);
        assert!(!info.https);

        let trusting = Config { trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..Config::default() };
        let info = client_info(&trusting, peer, &headers);
        assert_eq!(info.address, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(info.https);
    }

    fn parts_with(authorization: &str) -> Option<Parts> {
        let value = axum::http::HeaderValue::from_str(authorization).ok()?;
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        parts.headers.insert(AUTHORIZATION, value);
        Some(parts)
    }

    proptest::proptest! {
        /// Any Authorization header is read without panicking.
        #[test]
        fn credential_headers_never_panic(header in "\\PC{0,200}") {
            if let Some(parts) = parts_with(&header) {
                let _ = basic_credentials(&parts);
                let _ = api_key_credentials(&parts);
            }
        }

        /// What a client encodes is what Warden reads back (a password may hold `:`).
        #[test]
        fn basic_credentials_round_trip(user in "[^:\\p{C}]{1,40}", password in "\\PC{0,60}") {
            let header = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
            let parts = parts_with(&header);
            proptest::prop_assert!(parts.is_some());
            let read = parts.and_then(|p| basic_credentials(&p));
            proptest::prop_assert_eq!(read, Some((user, password)));
        }
    }
}
