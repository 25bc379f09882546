//! API keys: random, shown once, stored only as a SHA-256 hash.
//!
//! A key reads `rk_<16 hex: key id>_<64 hex: secret>`. The id part lets the server find
//! the stored record without a scan; the whole key's hash is compared in constant time.

use crate::{random_id_bytes, Store, StoreError};
use regelkreis_core::{KeyId, Scopes, TenantId, Timestamp};
use sha2::{Digest, Sha256};

/// A stored API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id.
    pub id: KeyId,
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// SHA-256 of the full key text.
    pub hash: [u8; 32],
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A freshly made key: the secret text, to show once, and the record to store.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// The full key; never stored.
    pub secret: String,
    /// What is stored.
    pub record: ApiKey,
}

/// Why a presented key was not accepted. All of these answer 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No key came with the request.
    #[error("missing API key: send it as 'Authorization: Bearer <key>'")]
    Missing,
    /// The text is not shaped like a regelkreis key.
    #[error("malformed API key")]
    Malformed,
    /// No such key, or the secret does not match.
    #[error("unknown API key")]
    Unknown,
    /// The key was revoked.
    #[error("API key was revoked")]
    Revoked,
    /// The store could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a new key for a tenant. Nothing is stored yet.
pub fn issue(
    tenant: &TenantId,
    name: &str,
    scopes: Scopes,
    now: Timestamp,
) -> Result<IssuedKey, StoreError> {
    let id = KeyId::from_random(random_id_bytes()?);
    let mut secret_bytes = [0u8; 32];
    getrandom::fill(&mut secret_bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    let id_hex = &id.as_str()[KeyId::PREFIX.len()..];
    let secret = format!("rk_{id_hex}_{}", hex::encode(secret_bytes));
    let record = ApiKey {
        id,
        tenant: tenant.clone(),
        name: name.to_owned(),
        scopes,
        hash: hash_key(&secret),
        created_at: now,
        revoked_at: None,
    };
    Ok(IssuedKey { secret, record })
}

/// SHA-256 of a key's text. Keys carry 256 random bits, so a fast hash is enough.
pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The key id inside a key's text, if the text is shaped like a key.
pub fn key_id_of(secret: &str) -> Option<KeyId> {
    let rest = secret.strip_prefix("rk_")?;
    let (id_hex, secret_hex) = rest.split_once('_')?;
    if secret_hex.len() != 64 || !secret_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    KeyId::parse(&format!("{}{id_hex}", KeyId::PREFIX)).ok()
}

/// Finds the key a request presented and checks it. Reads the store every time, so a key
/// created or revoked by another process takes effect at once.
pub fn authenticate(store: &dyn Store, secret: &str) -> Result<ApiKey, AuthError> {
    let id = key_id_of(secret).ok_or(AuthError::Malformed)?;
    let key = store.key(&id)?.ok_or(AuthError::Unknown)?;
    if !constant_time_eq(&key.hash, &hash_key(secret)) {
        return Err(AuthError::Unknown);
    }
    if key.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    Ok(key)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use regelkreis_core::Scope;

    #[test]
    fn issued_keys_parse_back_to_their_id() {
        let t = TenantId::from_random([1; 8]);
        let k = issue(&t, "ci", Scopes::new([Scope::Chat]), Timestamp(0)).unwrap();
        assert_eq!(key_id_of(&k.secret), Some(k.record.id.clone()));
        assert_eq!(k.record.hash, hash_key(&k.secret));
        assert_ne!(k.record.hash, hash_key(&format!("{}0", k.secret)));
        assert!(key_id_of("rk_zz_00").is_none());
        assert!(key_id_of("Bearer x").is_none());
        let other = issue(&t, "ci", Scopes::new([Scope::Chat]), Timestamp(0)).unwrap();
        assert_ne!(other.secret, k.secret);
    }
}
