//! password: argon2id hashing, and verification of argon2 and bcrypt hashes
//! into caller-owned memory.
//!
//! Owns the one set of argon2 parameters soute writes (the argon2 crate's
//! defaults: m=19 MiB, t=2, p=1, the OWASP minimum), [`Memory`] (the argon2
//! working blocks a verifier thread keeps while logins come) and the check
//! an unknown user costs (the same argon2 work against a random salt).
//!
//! It must never allocate argon2 blocks per verification (the caller's
//! [`Memory`] is the only working memory), verify a hash that needs more
//! memory than a [`Memory`] holds, or log, print or return a password or hash.

use super::{random_bytes, CredError};
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Memory of one argon2 run with soute's parameters: 19,456 blocks of 1 KiB.
pub const BLOCK_BYTES: usize = Params::DEFAULT_M_COST as usize * Block::SIZE;

/// Hashes `pw` with argon2id and the argon2 crate's default parameters
/// (m=19 MiB, t=2, p=1) and a random 16-byte salt. Returns the PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$...`). Used by `soute user add|passwd`
/// in its own short-lived process; the server never hashes.
pub fn hash_password(pw: &str) -> Result<String, CredError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| CredError::Hash(e.to_string()))?;
    Argon2::default()
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

    /// The blocks, allocated (once) at [`BLOCK_BYTES`].
    fn blocks(&mut self) -> &mut [Block] {
        if self.blocks.is_empty() {
            self.blocks = vec![Block::default(); Params::DEFAULT_M_COST as usize];
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
    if params.block_count() > Params::DEFAULT_M_COST as usize {
        return None;
    }
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(pw.as_bytes(), salt, out, memory.blocks())
        .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

/// The work of checking a password for a user who does not exist: one
/// argon2id run with soute's parameters against `salt`, result ignored, so
/// that an unknown user costs the same time as a wrong password.
pub fn burn_like_a_check(pw: &str, salt: &[u8; 16], memory: &mut Memory) {
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let _ = Argon2::default().hash_password_into_with_memory(
        pw.as_bytes(),
        salt,
        &mut out,
        memory.blocks(),
    );
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
    fn argon2_round_trip_uses_defaults_and_one_memory() {
        let mut memory = Memory::new();
        assert_eq!(memory.held_bytes(), 0, "nothing before the first check");
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify(&h, "s3cret", &mut memory), Verdict::Match);
        assert_eq!(memory.held_bytes(), BLOCK_BYTES);
        let before = memory.blocks.as_ptr();
        assert_eq!(verify(&h, "s3cret ", &mut memory), Verdict::Mismatch);
        assert_eq!(verify(&cheap_hash("x"), "x", &mut memory), Verdict::Match);
        assert_eq!(memory.blocks.as_ptr(), before, "the blocks are reused");
        assert_eq!(memory.held_bytes(), BLOCK_BYTES);
        assert_ne!(h, hash_password("s3cret").expect("hash"), "salt is random");
        for garbage in ["", "$argon2id$nope", "plain", "$1$abc$def", "{SHA}abc="] {
            assert_eq!(verify(garbage, "s3cret", &mut memory), Verdict::Unusable);
        }
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
