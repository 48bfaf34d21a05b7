//! Sealed hand-offs: a referral's contact details and note, encrypted by
//! the caseworker's app to the receiving organisation's X25519 public key
//! with libsodium's sealed box (`crypto_box_seal`: an ephemeral key pair,
//! X25519, XSalsa20-Poly1305). The server stores and forwards the
//! ciphertext and can never read it; only the organisation's secret key
//! opens it.
//!
//! Keys and ciphertexts travel as standard base64 with padding. These
//! functions are byte-compatible with libsodium and with PyNaCl's
//! `SealedBox` (docs/examples/referral_handoff.py), so an app in any
//! language can seal and open them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SEALBYTES, SecretKey};

use crate::domain::Invalid;
use crate::domain::referral::{HANDOFF_MAX_BYTES, HANDOFF_MIN_BYTES, check_handoff};

/// The length of an X25519 key, public or secret.
pub const KEY_BYTES: usize = 32;

/// The most plaintext a hand-off may carry (8 KiB).
pub const MAX_PLAINTEXT_BYTES: usize = HANDOFF_MAX_BYTES - SEALBYTES;

/// Why sealing or opening failed. Messages never repeat a key, a
/// ciphertext or a plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A key or a ciphertext is not in its format, or a plaintext is not of
    /// a size a hand-off may have.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The ciphertext is well formed but does not open with this key.
    #[error(
        "the sealed box does not open with this secret key: it was sealed to another key, or altered"
    )]
    DoesNotOpen,
}

/// The X25519 points of small order (libsodium's blocklist, compared with
/// the top bit cleared, as X25519 ignores it). Sealed to one of them, a
/// hand-off's shared secret is zero and anyone could open it; libsodium
/// refuses to seal to them, and so do we.
const SMALL_ORDER: [[u8; KEY_BYTES]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1, p and p + 1 (p = 2^255 - 19).
    near_p(0xec),
    near_p(0xed),
    near_p(0xee),
];

/// A little-endian number next to p = 2^255 - 19: its lowest byte `low`,
/// then every byte 0xff but the top one, 0x7f.
const fn near_p(low: u8) -> [u8; KEY_BYTES] {
    let mut key = [0xff; KEY_BYTES];
    key[0] = low;
    key[KEY_BYTES - 1] = 0x7f;
    key
}

/// A new key pair: `(secret key, public key)`, each 32 bytes in standard
/// base64. The organisation keeps the secret and registers the public key.
pub fn generate() -> (String, String) {
    let secret = SecretKey::generate(&mut OsRng);
    let public = secret.public_key();
    (
        STANDARD.encode(secret.to_bytes()),
        STANDARD.encode(public.as_bytes()),
    )
}

/// Decodes a 32-byte key in standard base64 (with padding).
fn decode_key(value: &str, what: &str) -> Result<[u8; KEY_BYTES], Invalid> {
    let expected = || {
        Invalid::new(
            "format",
            format!("{what}: 32 bytes in standard base64 with padding (44 characters ending in =)"),
        )
    };
    let bytes = STANDARD.decode(value).map_err(|_| expected())?;
    bytes.try_into().map_err(|_| expected())
}

/// Checks a public key an organisation registers: standard base64 with
/// padding of exactly 32 bytes, and not one of the X25519 points of small
/// order (which would let anyone open what is sealed to it).
pub fn parse_public_key(value: &str) -> Result<[u8; KEY_BYTES], Invalid> {
    let key = decode_key(value, "an X25519 public key")?;
    let mut masked = key;
    masked[31] &= 0x7f;
    if SMALL_ORDER.contains(&masked) {
        return Err(Invalid::new(
            "format",
            "not a usable X25519 public key (a point of small order); \
             generate a key pair with libsodium or `ketnoi referral keygen`",
        ));
    }
    Ok(key)
}

/// Decodes a sealed hand-off (standard base64 with padding) and checks its
/// size; the server cannot check more.
pub fn decode_handoff(value: &str) -> Result<Vec<u8>, Invalid> {
    let bytes = STANDARD.decode(value).map_err(|_| {
        Invalid::new(
            "format",
            format!(
                "a sealed box (libsodium crypto_box_seal) in standard base64 with padding, \
                 {HANDOFF_MIN_BYTES} to {HANDOFF_MAX_BYTES} bytes"
            ),
        )
    })?;
    check_handoff(&bytes)?;
    Ok(bytes)
}

/// Seals `plaintext` (1 byte to 8 KiB) to a public key given in standard
/// base64; returns the sealed box in standard base64, as the API takes it.
pub fn seal(public_key: &str, plaintext: &[u8]) -> Result<String, SealError> {
    let key = PublicKey::from(parse_public_key(public_key)?);
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(Invalid::new(
            "size",
            format!("a hand-off's plaintext is 1 to {MAX_PLAINTEXT_BYTES} bytes"),
        )
        .into());
    }
    let sealed = key
        .seal(&mut OsRng, plaintext)
        .map_err(|_| Invalid::new("size", "the plaintext is too long to seal"))?;
    Ok(STANDARD.encode(sealed))
}

/// Opens a sealed box given in standard base64 with a secret key given in
/// standard base64.
pub fn open(secret_key: &str, ciphertext: &str) -> Result<Vec<u8>, SealError> {
    let key = SecretKey::from(decode_key(secret_key, "an X25519 secret key")?);
    let sealed = STANDARD.decode(ciphertext).map_err(|_| {
        Invalid::new(
            "format",
            "a sealed box (libsodium crypto_box_seal) in standard base64 with padding",
        )
    })?;
    if sealed.len() <= SEALBYTES {
        return Err(Invalid::new(
            "size",
            format!("a sealed box is longer than {SEALBYTES} bytes"),
        )
        .into());
    }
    key.unseal(&sealed).map_err(|_| SealError::DoesNotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACT: &str = "Chị Lan, 0912 345 678, cần gặp luật sư";

    #[test]
    fn round_trip() {
        let (secret, public) = generate();
        assert_eq!(STANDARD.decode(&secret).unwrap().len(), KEY_BYTES);
        assert_eq!(parse_public_key(&public).unwrap().len(), KEY_BYTES);
        let sealed = seal(&public, CONTACT.as_bytes()).unwrap();
        let bytes = decode_handoff(&sealed).unwrap();
        assert_eq!(bytes.len(), CONTACT.len() + SEALBYTES);
        assert_eq!(open(&secret, &sealed).unwrap(), CONTACT.as_bytes());
        // Random ephemeral keys: the same plaintext never seals the same.
        assert_ne!(seal(&public, CONTACT.as_bytes()).unwrap(), sealed);
        // The largest hand-off the server takes.
        let long = vec![b'x'; MAX_PLAINTEXT_BYTES];
        let sealed = seal(&public, &long).unwrap();
        assert_eq!(decode_handoff(&sealed).unwrap().len(), HANDOFF_MAX_BYTES);
        assert_eq!(open(&secret, &sealed).unwrap(), long);
    }

    #[test]
    fn opens_what_libsodium_sealed() {
        // Sealed by PyNaCl (libsodium's crypto_box_seal) to the key pair whose
        // secret key is the bytes 1..=32.
        let secret = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let public = "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw=";
        let sealed =
            "zi5aw2AhMKDIxHKIctUtBaVWYONUCNPScCIhcn0y2z/UR22zHVXMg6AAIGZYLFAr1B82vS4Zh+9cmmU=";
        let key = SecretKey::from(decode_key(secret, "key").unwrap());
        assert_eq!(STANDARD.encode(key.public_key().as_bytes()), public);
        assert_eq!(open(secret, sealed).unwrap(), "Kết Nối".as_bytes());
    }

    #[test]
    fn the_wrong_key_does_not_open() {
        let (_, public) = generate();
        let (other_secret, _) = generate();
        let sealed = seal(&public, CONTACT.as_bytes()).unwrap();
        assert!(matches!(
            open(&other_secret, &sealed),
            Err(SealError::DoesNotOpen)
        ));
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let (secret, public) = generate();
        let sealed = STANDARD
            .decode(seal(&public, CONTACT.as_bytes()).unwrap())
            .unwrap();
        // Every byte matters: the ephemeral key, the MAC, the ciphertext.
        for index in [0, 31, 32, 47, 48, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                matches!(
                    open(&secret, &STANDARD.encode(&tampered)),
                    Err(SealError::DoesNotOpen)
                ),
                "byte {index}"
            );
        }
        // Cut short.
        let short = STANDARD.encode(&sealed[..sealed.len() - 1]);
        assert!(open(&secret, &short).is_err());
        let tiny = STANDARD.encode(&sealed[..SEALBYTES]);
        assert!(matches!(open(&secret, &tiny), Err(SealError::Invalid(_))));
    }

    #[test]
    fn keys_of_the_wrong_length_or_format_are_refused() {
        for value in [
            "",
            "AAAA",
            &STANDARD.encode([7; 31]),
            &STANDARD.encode([7; 33]),
            &STANDARD.encode([7; 64]),
            // Unpadded, URL-safe, or with spaces: not standard base64.
            &base64::engine::general_purpose::STANDARD_NO_PAD.encode([7; 32]),
            &base64::engine::general_purpose::URL_SAFE.encode([0xfb; 32]),
            &format!(" {}", STANDARD.encode([7; 32])),
            "not base64 at all, not base64 at all, not!!",
        ] {
            let invalid = parse_public_key(value).unwrap_err();
            assert_eq!(invalid.rule, "format", "{value:?}");
            assert!(invalid.message.contains("32 bytes"), "{}", invalid.message);
            assert!(matches!(
                seal(value, b"x"),
                Err(SealError::Invalid(Invalid { rule: "format", .. }))
            ));
            assert!(matches!(
                open(value, &STANDARD.encode([0; 64])),
                Err(SealError::Invalid(Invalid { rule: "format", .. }))
            ));
        }
        assert!(parse_public_key(&STANDARD.encode([7; 32])).is_ok());
    }

    #[test]
    fn small_order_keys_are_refused() {
        for point in SMALL_ORDER {
            for high in [0, 0x80] {
                let mut key = point;
                key[31] |= high;
                let invalid = parse_public_key(&STANDARD.encode(key)).unwrap_err();
                assert_eq!(invalid.rule, "format");
                assert!(invalid.message.contains("small order"));
            }
        }
    }

    #[test]
    fn plaintext_and_handoff_sizes_are_bounded() {
        let (_, public) = generate();
        assert!(matches!(
            seal(&public, b""),
            Err(SealError::Invalid(Invalid { rule: "size", .. }))
        ));
        assert!(matches!(
            seal(&public, &vec![0; MAX_PLAINTEXT_BYTES + 1]),
            Err(SealError::Invalid(Invalid { rule: "size", .. }))
        ));
        assert_eq!(
            decode_handoff(&STANDARD.encode([0; SEALBYTES]))
                .unwrap_err()
                .rule,
            "size"
        );
        assert_eq!(decode_handoff("not base64!").unwrap_err().rule, "format");
        assert!(decode_handoff(&STANDARD.encode([0; SEALBYTES + 1])).is_ok());
    }
}
