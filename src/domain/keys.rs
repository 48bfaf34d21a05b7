//! API keys: their tokens, and how a presented one is checked. The roles
//! they carry are [`super::access::Role`].
//!
//! A key is `kn_` followed by 43 base64url characters (256 random bits).
//! Its first [`PREFIX_LEN`] characters are stored in clear to find the key
//! and show it in listings; the rest is known only through its SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Invalid;

const SCHEME: &str = "kn_";
/// Characters of the token kept in clear (scheme included).
pub const PREFIX_LEN: usize = 12;
const TOKEN_LEN: usize = SCHEME.len() + 43;

/// A freshly made key: the token, to show once, and what is stored.
pub struct NewSecret {
    pub token: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

impl NewSecret {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let token = format!("{SCHEME}{}", URL_SAFE_NO_PAD.encode(bytes));
        Self {
            prefix: token[..PREFIX_LEN].to_owned(),
            hash: hash(&token),
            token,
        }
    }
}

/// A token as presented by a client, checked for shape only.
#[derive(Debug)]
pub struct PresentedToken<'a>(&'a str);

impl<'a> PresentedToken<'a> {
    pub fn parse(token: &'a str) -> Result<Self, Invalid> {
        let well_formed = token.len() == TOKEN_LEN
            && token.starts_with(SCHEME)
            && token[SCHEME.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if well_formed {
            Ok(Self(token))
        } else {
            Err(Invalid::new("format", "not a Kết Nối API key"))
        }
    }

    pub fn prefix(&self) -> &'a str {
        &self.0[..PREFIX_LEN]
    }

    /// Whether this token is the one `stored_hash` was made from, in time
    /// that does not depend on where they differ.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        hash(self.0).ct_eq(stored_hash).into()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_own_hash() {
        let secret = NewSecret::generate();
        let presented = PresentedToken::parse(&secret.token).unwrap();
        assert_eq!(presented.prefix(), secret.prefix);
        assert!(presented.matches(&secret.hash));
        let other = NewSecret::generate();
        assert!(!presented.matches(&other.hash));
        assert_ne!(secret.token, other.token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in [
            "",
            "kn_",
            "Bearer x",
            "kn_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(PresentedToken::parse(token).is_err(), "{token}");
        }
    }
}
