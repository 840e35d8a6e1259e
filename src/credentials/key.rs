//! The key the store's credentials are sealed with: 32 random bytes, given
//! base64-encoded in `SCENARIST_SECRET_KEY` or in a key file, never stored.
//! Sealing is AES-256-GCM (ring, already in the tree through rustls) with a
//! fresh random nonce per seal, and the connection's name as associated
//! data, so a sealed row copied onto another connection does not open.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Digest;

/// Why a key could not be read, or a credential opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyError {
    #[error("{origin} is not a key: {why} (make one with `scenarist credentials keygen`)")]
    Malformed { origin: String, why: String },
    #[error("cannot read the key file {path}: {message}")]
    File { path: String, message: String },
    #[error("the credential of connection `{0}` does not open with this key: it was sealed with another key, or changed")]
    Open(String),
}

/// A key, with its public id (what rows record, to tell a wrong key).
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// Reads a key written as base64 (standard or URL-safe, padded or not);
    /// `origin` names where it came from in errors (never the value).
    pub fn parse(text: &str, origin: &str) -> Result<SecretKey, KeyError> {
        let text = text.trim();
        let malformed = |why: &str| KeyError::Malformed {
            origin: origin.to_owned(),
            why: why.to_owned(),
        };
        if text.is_empty() {
            return Err(malformed("it is empty"));
        }
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or_else(|| malformed("it is not base64"))?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            malformed(&format!(
                "it holds {} bytes, and a key is 32 random bytes",
                bytes.len()
            ))
        })?;
        Ok(SecretKey::from_bytes(key))
    }

    /// Reads the key file `path` (its whole text is the key).
    pub fn from_file(path: &std::path::Path) -> Result<SecretKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        SecretKey::parse(&text, &format!("the key file {}", path.display()))
    }

    /// A new random key.
    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random source");
        SecretKey::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> SecretKey {
        let digest = sha2::Sha256::new()
            .chain_update(b"scenarist credential key id\0")
            .chain_update(key)
            .finalize();
        let id = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        SecretKey { key, id }
    }

    /// The key written out, for `credentials keygen`.
    pub fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// Names the key without revealing it (12 hex digits of a hash).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key).expect("a 32-byte key"))
    }

    /// `nonce || ciphertext || tag` of `plain`, bound to `connection`.
    pub fn seal(&self, connection: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut sealed = plain.to_vec();
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(connection.as_bytes()),
                &mut sealed,
            )
            .expect("sealing fits in memory");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Opens what [`SecretKey::seal`] sealed for `connection`.
    pub fn open(&self, connection: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let fail = || KeyError::Open(connection.to_owned());
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut body = body.to_vec();
        let plain = self
            .cipher()
            .open_in_place(nonce, Aad::from(connection.as_bytes()), &mut body)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_connection() {
        let key = SecretKey::generate();
        let sealed = key.seal("crm", b"refresh-token-123");
        assert!(!sealed
            .windows(b"refresh-token-123".len())
            .any(|w| w == b"refresh-token-123"));
        assert_eq!(key.open("crm", &sealed).unwrap(), b"refresh-token-123");
        assert_eq!(
            key.open("billing", &sealed),
            Err(KeyError::Open("billing".to_owned()))
        );
        let other = SecretKey::generate();
        assert!(other.open("crm", &sealed).is_err());
        assert_ne!(key.id(), other.id());
        // Two seals of the same text differ (a fresh nonce each time).
        assert_ne!(key.seal("crm", b"x"), key.seal("crm", b"x"));
    }

    #[test]
    fn keys_are_read_from_base64_of_32_bytes() {
        let key = SecretKey::generate();
        let again =
            SecretKey::parse(&format!(" {}\n", key.encoded()), "SCENARIST_SECRET_KEY").unwrap();
        assert_eq!(again.id(), key.id());
        let short = SecretKey::parse("c2hvcnQ=", "SCENARIST_SECRET_KEY").unwrap_err();
        assert_eq!(
            short.to_string(),
            "SCENARIST_SECRET_KEY is not a key: it holds 5 bytes, and a key is 32 random bytes (make one with `scenarist credentials keygen`)"
        );
        assert!(matches!(
            SecretKey::parse("not base64!", "x"),
            Err(KeyError::Malformed { .. })
        ));
    }
}
