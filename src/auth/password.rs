//! password: argon2id hashing, and verification of argon2 and bcrypt hashes
//! into caller-owned memory.
//!
//! Owns the one set of argon2 parameters soute writes ([`hash_params`]:
//! m=7 MiB, t=5, p=1, the low-memory row of OWASP's table of equally strong
//! argon2id settings), the most memory a verification may take
//! ([`BLOCK_BYTES`]: 19 MiB, the argon2 crate's default, which soute wrote
//! before and other tools still write), [`Memory`] (the argon2 working
//! blocks a verifier thread keeps while logins come) and the check an
//! unknown user costs (the same argon2 work against a random salt).
//!
//! It must never allocate argon2 blocks per verification (the caller's
//! [`Memory`] is the only working memory, grown at most once to the largest
//! hash it met), verify a hash that needs more memory than [`BLOCK_BYTES`],
//! or log, print or return a password or hash.

use super::{random_bytes, CredError};
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// soute's argon2id cost: 7,168 KiB of memory, 5 passes, 1 lane. OWASP's
/// Password Storage Cheat Sheet lists it beside m=19 MiB/t=2 as giving "an
/// equal level of defense" (the trade is CPU for RAM); on a small machine
/// it is the right trade: each concurrent check holds 7 MiB, not 19.
pub const HASH_M_COST: u32 = 7 * 1024;
/// Passes over the memory (see [`HASH_M_COST`]).
pub const HASH_T_COST: u32 = 5;

/// The parameters of every hash soute writes.
pub fn hash_params() -> Params {
    Params::new(HASH_M_COST, HASH_T_COST, 1, None).expect("valid argon2 parameters")
}

/// Memory of one check of a hash soute writes (7 MiB).
pub const HASH_BLOCK_BYTES: usize = HASH_M_COST as usize * Block::SIZE;

/// The most argon2 memory one verification may need: 19,456 blocks of
/// 1 KiB (the argon2 crate's default, m=19 MiB, which soute wrote before
/// [`hash_params`] and which other tools write). Hashes needing more are
/// refused as unusable, never allocated.
pub const BLOCK_BYTES: usize = MAX_VERIFY_BLOCKS * Block::SIZE;
const MAX_VERIFY_BLOCKS: usize = Params::DEFAULT_M_COST as usize;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, hash_params())
}

/// Hashes `pw` with argon2id, [`hash_params`] and a random 16-byte salt.
/// Returns the PHC string (`$argon2id$v=19$m=7168,t=5,p=1$...`). Used by
/// `soute user add|passwd` in its own short-lived process; the server never
/// hashes.
pub fn hash_password(pw: &str) -> Result<String, CredError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| CredError::Hash(e.to_string()))?;
    hasher()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredError::Hash(e.to_string()))
}

/// The argon2 working memory of one verifier: allocated on first use, then
/// reused by every verification of the thread that owns it (so no malloc
/// arena grows and shrinks per login), and released only after the pool has
/// been idle for a while (`pool::RELEASE_AFTER`).
#[derive(Default)]
pub struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// An empty memory; the blocks are allocated by the first verification.
    pub fn new() -> Memory {
        Memory { blocks: Vec::new() }
    }

    /// At least `needed` blocks (and at least what soute's own hashes
    /// need): allocated on first use, grown only for a hash bigger than any
    /// before (at most [`BLOCK_BYTES`]: bigger hashes are refused before).
    fn blocks(&mut self, needed: usize) -> &mut [Block] {
        if self.blocks.len() < needed {
            let size = needed.max(HASH_M_COST as usize);
            self.blocks = Vec::new();
            self.blocks = vec![Block::default(); size];
        }
        &mut self.blocks
    }

    /// Give the blocks back (the pool does so after a quiet spell); the next
    /// verification allocates them again.
    pub fn release(&mut self) {
        self.blocks = Vec::new();
    }

    /// Bytes held now (0 before the first verification).
    pub fn held_bytes(&self) -> usize {
        self.blocks.len() * Block::SIZE
    }
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
    /// The stored hash is not one soute can check: malformed, an unknown
    /// scheme, or argon2 parameters needing more than [`BLOCK_BYTES`].
    Unusable,
}

/// Checks `pw` against `hash`: an argon2 PHC string (computed in `memory`),
/// or a bcrypt hash (`$2y$`, `$2b$`, `$2a$`, as written by `htpasswd -B`).
pub fn verify(hash: &str, pw: &str, memory: &mut Memory) -> Verdict {
    if is_bcrypt(hash) {
        return match bcrypt::verify(pw, hash) {
            Ok(true) => Verdict::Match,
            Ok(false) => Verdict::Mismatch,
            Err(_) => Verdict::Unusable,
        };
    }
    if !hash.starts_with("$argon2") {
        return Verdict::Unusable;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Verdict::Unusable;
    };
    match verify_argon2(&parsed, pw, memory) {
        Some(true) => Verdict::Match,
        Some(false) => Verdict::Mismatch,
        None => Verdict::Unusable,
    }
}

fn verify_argon2(parsed: &PasswordHash<'_>, pw: &str, memory: &mut Memory) -> Option<bool> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(parsed).ok()?;
    let needed = params.block_count();
    if needed > MAX_VERIFY_BLOCKS {
        return None;
    }
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(pw.as_bytes(), salt, out, memory.blocks(needed))
        .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

/// The work of checking a password for a user who does not exist: one
/// argon2id run with soute's parameters against `salt`, result ignored, so
/// that an unknown user costs the same time as a wrong password.
pub fn burn_like_a_check(pw: &str, salt: &[u8; 16], memory: &mut Memory) {
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let _ = hasher().hash_password_into_with_memory(
        pw.as_bytes(),
        salt,
        &mut out,
        memory.blocks(HASH_M_COST as usize),
    );
}

/// Roughly what checking a password against `hash` costs, in argon2 KiB
/// passes (m × t): argon2 hashes from their `m=` and `t=`; a bcrypt hash of
/// cost c as 2^c × 64 (measured here: bcrypt cost 10 took 50 ms with
/// `htpasswd -nbB -C 10`, argon2id m=19456 t=2 about 35 ms, so one bcrypt
/// round ≈ 52 KiB passes); 0 for anything else. Used to pick the decoy an
/// unknown user's check is timed against: the costliest stored hash.
pub fn check_cost(hash: &str) -> u64 {
    if is_bcrypt(hash) {
        let cost: u32 = hash[4..6].parse().unwrap_or(0);
        return 64u64.checked_shl(cost.min(31)).unwrap_or(u64::MAX);
    }
    if !hash.starts_with("$argon2") {
        return 0;
    }
    let param = |name: &str| -> u64 {
        hash.split(['$', ','])
            .find_map(|part| part.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    param("m=").saturating_mul(param("t="))
}

/// A bcrypt hash in modular crypt format: `$2a$`, `$2b$` or `$2y$`, a
/// two-digit cost, then 53 characters of salt and hash.
pub fn is_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// A valid argon2id PHC string with tiny parameters, for tests that only
/// care about outcomes, not cost.
#[cfg(test)]
pub(crate) fn cheap_hash(pw: &str) -> String {
    let params = Params::new(8, 1, 1, None).expect("params");
    let salt = SaltString::encode_b64(&random_bytes::<16>().expect("rand")).expect("salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(pw.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip_uses_soutes_parameters_and_one_memory() {
        let mut memory = Memory::new();
        assert_eq!(memory.held_bytes(), 0, "nothing before the first check");
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert_eq!(verify(&h, "s3cret", &mut memory), Verdict::Match);
        assert_eq!(memory.held_bytes(), HASH_BLOCK_BYTES);
        let before = memory.blocks.as_ptr();
        assert_eq!(verify(&h, "s3cret ", &mut memory), Verdict::Mismatch);
        assert_eq!(verify(&cheap_hash("x"), "x", &mut memory), Verdict::Match);
        assert_eq!(memory.blocks.as_ptr(), before, "the blocks are reused");
        assert_eq!(memory.held_bytes(), HASH_BLOCK_BYTES);
        assert_ne!(h, hash_password("s3cret").expect("hash"), "salt is random");
        for garbage in ["", "$argon2id$nope", "plain", "$1$abc$def", "{SHA}abc="] {
            assert_eq!(verify(garbage, "s3cret", &mut memory), Verdict::Unusable);
        }
    }

    #[test]
    fn hashes_written_with_the_older_19_mib_parameters_still_verify() {
        // What soute wrote before (and `argon2`'s default elsewhere).
        let salt = SaltString::encode_b64(&[3u8; 16]).expect("salt");
        let old = Argon2::default()
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        let mut memory = Memory::new();
        assert_eq!(
            verify(&hash_password("pw").expect("hash"), "pw", &mut memory),
            Verdict::Match
        );
        assert_eq!(memory.held_bytes(), HASH_BLOCK_BYTES);
        assert_eq!(verify(&old, "pw", &mut memory), Verdict::Match);
        assert_eq!(verify(&old, "px", &mut memory), Verdict::Mismatch);
        assert_eq!(
            memory.held_bytes(),
            BLOCK_BYTES,
            "grown once for the bigger hash"
        );
        let grown = memory.blocks.as_ptr();
        assert_eq!(
            verify(&hash_password("pw").expect("hash"), "pw", &mut memory),
            Verdict::Match
        );
        assert_eq!(
            memory.blocks.as_ptr(),
            grown,
            "and kept, not shrunk per check"
        );
    }

    #[test]
    fn argon2_hashes_needing_more_memory_are_refused_not_allocated() {
        let params = Params::new(Params::DEFAULT_M_COST * 2, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let big = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        let mut memory = Memory::new();
        assert_eq!(verify(&big, "pw", &mut memory), Verdict::Unusable);
        assert_eq!(memory.held_bytes(), 0);
    }

    #[test]
    fn check_costs_rank_argon2_and_bcrypt_by_their_work() {
        let salt = "abcdefghijklmnopqrstuu".repeat(3)[..53].to_string();
        let bcrypt = |prefix: &str, cost: &str| format!("${prefix}${cost}${salt}");
        let old = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let new = "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA";
        assert_eq!(check_cost(old), 38_912);
        assert_eq!(check_cost(new), 35_840);
        assert_eq!(check_cost(&bcrypt("2y", "05")), 2_048);
        assert_eq!(check_cost(&bcrypt("2a", "10")), 65_536);
        assert!(check_cost(&bcrypt("2b", "12")) > check_cost(&bcrypt("2y", "10")));
        assert!(check_cost(&bcrypt("2y", "10")) > check_cost(old));
        assert!(check_cost(old) > check_cost(&bcrypt("2b", "05")));
        assert_eq!(check_cost("plain"), 0);
    }

    #[test]
    fn bcrypt_hashes_verify_in_every_prefix() {
        let mut memory = Memory::new();
        let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let h = format!("{prefix}{}", &hash[4..]);
            assert!(is_bcrypt(&h));
            assert_eq!(verify(&h, "hunter2", &mut memory), Verdict::Match);
            assert_eq!(verify(&h, "hunter3", &mut memory), Verdict::Mismatch);
        }
        assert_eq!(memory.held_bytes(), 0, "bcrypt needs no argon2 blocks");
    }
}
