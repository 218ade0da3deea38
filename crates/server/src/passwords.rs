//! Passwords: argon2id hashes, and the bounded checker every password-based
//! sign-in goes through (the login form and HTTP Basic).
//!
//! A check costs ≈ 19 MiB and tens of milliseconds by design, so an
//! unauthenticated client that could start checks without bound could take
//! the node's memory (48 concurrent bad Basic requests once took it from 1 to
//! 1.8 GB, and it stayed allocated). Checks therefore run on a fixed pool of
//! threads, one per core, each reusing one memory buffer, so memory stays
//! flat whatever arrives. In front of the pool sits a bounded queue, and one
//! client address may hold only a share of it: a flood from one address is
//! refused with 429 instead of delaying everyone's sign-in, and a flood from
//! many gets 503 with `Retry-After` instead of an ever longer queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Queued and running checks per checking thread, in all.
const QUEUE_PER_THREAD: usize = 16;
/// The share of the queue one client address may hold.
const ADDRESS_SHARE: usize = 4;
/// A stored hash asking for more memory than this is refused (ours use 19 MiB).
const MAX_MEMORY_BLOCKS: usize = 256 * 1024;

/// A new argon2id hash of `password` (Argon2's default cost). For one-shot
/// commands; a running node hashes on its checker (`PasswordChecker::hash`),
/// whose threads reuse their working memory.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    hash_with(&mut Vec::new(), password)
}

/// Hashes with `memory` as argon2's working memory (grown once, then reused).
fn hash_with(memory: &mut Vec<Block>, password: &str) -> anyhow::Result<String> {
    let argon = Argon2::default();
    let params = argon.params().clone();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut salt_bytes = [0u8; 16];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut memory[..])
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("hashing password: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("hashing password: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Checks `password` against a PHC argon2 string, using `memory` as the
/// algorithm's working memory (grown once, then reused).
fn verify_with(memory: &mut Vec<Block>, hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else { return false };
    let version = parsed.version.map(Version::try_from).transpose().ok().flatten().unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let blocks = params.block_count();
    if blocks > MAX_MEMORY_BLOCKS {
        tracing::warn!(blocks, "a stored password hash asks for too much memory; refusing it");
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..]).is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

/// What unknown users are checked against, so the answer takes as long as
/// for a real one.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password anyone has").unwrap_or_default())
}

enum Job {
    /// `place` is given back when the job is done, not when its request goes
    /// away: a client that disconnects cannot free a place its job still holds.
    Verify {
        hash: Option<String>,
        password: String,
        reply: oneshot::Sender<bool>,
        place: Admitted,
    },
    Hash {
        password: String,
        reply: oneshot::Sender<anyhow::Result<String>>,
    },
}

#[derive(Default)]
struct InFlight {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

pub struct PasswordChecker {
    jobs: SyncSender<Job>,
    in_flight: Mutex<InFlight>,
    capacity: usize,
    per_address: usize,
}

impl PasswordChecker {
    /// `threads` checking threads (one per core is right: argon2 is CPU-bound).
    pub fn new(threads: usize) -> Arc<PasswordChecker> {
        let threads = threads.max(1);
        let capacity = threads * QUEUE_PER_THREAD;
        let (jobs, inbox) = sync_channel::<Job>(capacity);
        let inbox = Arc::new(Mutex::new(inbox));
        for n in 0..threads {
            let inbox = inbox.clone();
            let spawned = std::thread::Builder::new().name(format!("password-check-{n}")).spawn(move || check_loop(&inbox));
            if let Err(err) = spawned {
                tracing::error!(error = %err, "could not start a password-check thread");
            }
        }
        Arc::new(PasswordChecker { jobs, in_flight: Mutex::default(), capacity, per_address: (capacity / ADDRESS_SHARE).max(1) })
    }

    pub fn for_this_machine() -> Arc<PasswordChecker> {
        PasswordChecker::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2))
    }

    /// A new hash of `password`, made on the checker's threads (setting a
    /// password is rare and trusted: it takes no place in the queue).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job::Hash { password, reply }).map_err(|_| anyhow::anyhow!("the password checker is busy"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the password checker has stopped"))?
    }

    /// A place in the queue for a check from `client`, or the refusal to send.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Admitted, ApiError> {
        let mut in_flight = self.in_flight.lock().map_err(|_| anyhow::anyhow!("password checker lock poisoned"))?;
        let mine = in_flight.by_address.get(&client).copied().unwrap_or(0);
        if mine >= self.per_address {
            tracing::warn!(%client, "too many concurrent password checks from one address");
            return Err(ApiError::TooManyRequests {
                message: "Too many sign-in attempts from your address are in progress; try again in a moment".into(),
                retry_after_secs: 1,
            });
        }
        if in_flight.total >= self.capacity {
            tracing::warn!("password-check queue full");
            return Err(ApiError::Busy { message: "Too many sign-in attempts are in progress; try again in a moment".into(), retry_after_secs: 1 });
        }
        in_flight.total += 1;
        *in_flight.by_address.entry(client).or_default() += 1;
        Ok(Admitted { checker: self.clone(), client })
    }
}

fn check_loop(inbox: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        // Only this wait holds the lock; the work itself runs unlocked.
        let job = match inbox.lock() {
            Ok(inbox) => inbox.recv(),
            Err(_) => return,
        };
        match job {
            Ok(Job::Verify { hash, password, reply, place }) => {
                let verified = match &hash {
                    Some(hash) => verify_with(&mut memory, hash, &password),
                    None => {
                        let _ = verify_with(&mut memory, dummy_hash(), &password);
                        false
                    }
                };
                // The place first, so a client that has its answer finds it free.
                drop(place);
                let _ = reply.send(verified);
            }
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(hash_with(&mut memory, &password));
            }
            Err(_) => return,
        }
    }
}

/// A check admitted to the queue; its place is given back when dropped.
pub struct Admitted {
    checker: Arc<PasswordChecker>,
    client: IpAddr,
}

impl Admitted {
    /// Verifies against `hash`, or against a fixed hash when the user does
    /// not exist. An error (503) only if the checker cannot take the job,
    /// never a wrong answer.
    pub async fn verify(self, hash: Option<String>, password: String) -> Result<bool, ApiError> {
        let busy = || ApiError::Busy { message: "Too many sign-in attempts are in progress; try again in a moment".into(), retry_after_secs: 1 };
        let (reply, answer) = oneshot::channel();
        let jobs = self.checker.jobs.clone();
        match jobs.try_send(Job::Verify { hash, password, reply, place: self }) {
            Ok(()) => answer.await.map_err(|_| busy()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(busy()),
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.checker.in_flight.lock() {
            in_flight.total = in_flight.total.saturating_sub(1);
            if let Some(count) = in_flight.by_address.get_mut(&self.client) {
                *count -= 1;
                if *count == 0 {
                    in_flight.by_address.remove(&self.client);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, &hash, "correct horse"));
        assert!(!verify_with(&mut memory, &hash, "correct horse "));
        assert!(!verify_with(&mut memory, "not a hash", "x"));
        // Hashes stored by earlier versions (argon2's own hasher) still verify.
        let older = argon2::PasswordHasher::hash_password(
            &Argon2::default(),
            b"correct horse",
            &SaltString::generate(&mut argon2::password_hash::rand_core::OsRng),
        )
        .unwrap()
        .to_string();
        assert!(verify_with(&mut memory, &older, "correct horse"));
        let len = memory.len();
        assert!(verify_with(&mut memory, &hash, "correct horse"));
        assert_eq!(memory.len(), len, "the working memory is reused, not grown");
    }

    #[tokio::test]
    async fn checks_run_on_the_pool_and_unknown_users_never_pass() {
        let checker = PasswordChecker::new(1);
        let hash = checker.hash("s3cret".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let client: IpAddr = [127, 0, 0, 1].into();
        assert!(checker.admit(client).unwrap().verify(Some(hash.clone()), "s3cret".into()).await.unwrap());
        assert!(!checker.admit(client).unwrap().verify(Some(hash), "wrong".into()).await.unwrap());
        assert!(!checker.admit(client).unwrap().verify(None, "s3cret".into()).await.unwrap());
        assert_eq!(checker.in_flight.lock().unwrap().total, 0, "every place given back once its job is done");
    }

    #[test]
    fn one_address_holds_only_its_share_and_the_queue_is_bounded() {
        let checker = PasswordChecker::new(1);
        let one: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..checker.per_address).map(|_| checker.admit(one).unwrap()).collect();
        let refused = checker.admit(one).err().unwrap();
        assert_eq!(refused.status(), 429);
        // Other addresses fill the rest of the queue, then everyone waits.
        let others: Vec<_> = (0..checker.capacity - checker.per_address).map(|n| checker.admit(IpAddr::from([10, 0, 1, n as u8])).unwrap()).collect();
        assert_eq!(checker.admit([10, 0, 2, 1].into()).err().unwrap().status(), 503);
        drop(held);
        assert!(checker.admit(one).is_ok(), "places are given back");
        drop(others);
        assert_eq!(checker.in_flight.lock().unwrap().total, 0);
        assert!(checker.in_flight.lock().unwrap().by_address.is_empty());
    }
}
