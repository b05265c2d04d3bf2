//! Client-side encryption of everything secret the team store holds.
//!
//! - One 256-bit team key per team, held in a [`TeamKey`] (zeroed on drop, redacted in
//!   `Debug`). The database never sees it: it holds a key check value (a sealed known
//!   text) so a wrong key is refused at join, before anything is written.
//! - XChaCha20-Poly1305 (192-bit random nonces: no nonce bookkeeping across machines).
//! - Associated data binds each ciphertext to where it belongs ([`Scope`]): the team, the
//!   kind of secret, the row's id and, for token sets, the generation; plus the header
//!   (format version and key epoch). A ciphertext copied to another row, another team or
//!   another generation fails to open, as does one opened with another key.
//!
//! Wire form of a ciphertext: `0x01 ‖ epoch (u32 BE) ‖ nonce (24) ‖ ciphertext+tag`.

use std::fmt;

use authdeck_core::{Error, ErrorCode, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const AD_DOMAIN: &[u8] = b"authdeck-team/v1";
const KEY_CHECK_TEXT: &[u8] = b"authdeck team key check";

/// Where a ciphertext belongs: every field goes into the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// A connection's token set (access + refresh token, child secret…) at one generation.
    TokenSet {
        team: &'a str,
        connection: &'a str,
        generation: i64,
    },
    /// A client's secret (the provider app registration).
    ClientSecret { team: &'a str, client: &'a str },
    /// A connection's FedEx child secret.
    ChildSecret { team: &'a str, connection: &'a str },
    /// A pending authorization's secrets (PKCE verifier, state).
    Pending { team: &'a str, pending: &'a str },
    /// The key check value stored in the team's row.
    KeyCheck { team: &'a str },
}

impl Scope<'_> {
    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        fn field(ad: &mut Vec<u8>, bytes: &[u8]) {
            ad.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            ad.extend_from_slice(bytes);
        }
        let mut ad = Vec::with_capacity(128);
        field(&mut ad, AD_DOMAIN);
        field(&mut ad, header);
        match *self {
            Scope::TokenSet {
                team,
                connection,
                generation,
            } => {
                field(&mut ad, b"token_set");
                field(&mut ad, team.as_bytes());
                field(&mut ad, connection.as_bytes());
                field(&mut ad, &generation.to_be_bytes());
            }
            Scope::ClientSecret { team, client } => {
                field(&mut ad, b"client_secret");
                field(&mut ad, team.as_bytes());
                field(&mut ad, client.as_bytes());
            }
            Scope::ChildSecret { team, connection } => {
                field(&mut ad, b"child_secret");
                field(&mut ad, team.as_bytes());
                field(&mut ad, connection.as_bytes());
            }
            Scope::Pending { team, pending } => {
                field(&mut ad, b"pending");
                field(&mut ad, team.as_bytes());
                field(&mut ad, pending.as_bytes());
            }
            Scope::KeyCheck { team } => {
                field(&mut ad, b"key_check");
                field(&mut ad, team.as_bytes());
            }
        }
        ad
    }
}

/// A team's key. Zeroed on drop; `Debug` shows no byte of it.
pub struct TeamKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    epoch: u32,
}

impl fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TeamKey([redacted], epoch {})", self.epoch)
    }
}

impl TeamKey {
    /// A new random key (from the OS) for `epoch` (1 for a new team; each
    /// `rotate-key` takes the next).
    pub fn generate(epoch: u32) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut())
            .map_err(|e| Error::internal("no randomness from the OS").with_detail(e.to_string()))?;
        Ok(Self { bytes, epoch })
    }

    /// A key from its raw bytes (e.g. read back from the keyring).
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>, epoch: u32) -> Self {
        Self { bytes, epoch }
    }

    /// The raw bytes, to store in the keyring or a 0600 file.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.bytes.as_ref()))
    }

    /// Encrypt `plaintext` for `scope`.
    pub fn seal(&self, scope: &Scope<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = FORMAT;
        header[1..5].copy_from_slice(&self.epoch.to_be_bytes());
        getrandom::fill(&mut header[5..])
            .map_err(|e| Error::internal("no randomness from the OS").with_detail(e.to_string()))?;
        let ad = scope.associated_data(&header);
        let nonce = XNonce::from_slice(&header[5..]);
        let ct = self
            .cipher()
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypt a ciphertext sealed for `scope`. Fails (code `storage`, no detail about the
    /// content) when it was sealed for another scope, with another key, or was altered.
    pub fn open(&self, scope: &Scope<'_>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT {
            return Err(Error::new(
                ErrorCode::Storage,
                "A secret in the team store is damaged or in an unknown format.",
            ));
        }
        let epoch = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        if epoch != self.epoch {
            return Err(Error::new(
                ErrorCode::Storage,
                "A secret in the team store is sealed under another team key: join the team again with its current join key.",
            )
            .with_detail(format!("sealed under key epoch {epoch}, this key is epoch {}", self.epoch)));
        }
        let (header, ct) = sealed.split_at(HEADER_LEN);
        let ad = scope.associated_data(header);
        let nonce = XNonce::from_slice(&header[5..]);
        self.cipher()
            .decrypt(nonce, Payload { msg: ct, aad: &ad })
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::new(
                    ErrorCode::Storage,
                    "A secret in the team store does not open with this team's key (wrong key, or moved to another row).",
                )
            })
    }

    /// The key check value for `team`: stored in the team's row at `init`, checked at
    /// `join` and at every open of the store.
    pub fn check_value(&self, team: &str) -> Result<Vec<u8>> {
        self.seal(&Scope::KeyCheck { team }, KEY_CHECK_TEXT)
    }

    /// Whether `check` is this key's check value for `team`.
    pub fn verify_check_value(&self, team: &str, check: &[u8]) -> Result<()> {
        let text = self.open(&Scope::KeyCheck { team }, check).map_err(|_| {
            Error::invalid_input(
                "This team key is not the team's current key: ask for a new join key.",
            )
        })?;
        if text.as_slice() == KEY_CHECK_TEXT {
            Ok(())
        } else {
            Err(Error::invalid_input(
                "This team key is not the team's current key: ask for a new join key.",
            ))
        }
    }
}

const JOIN_PREFIX: &str = "adtk1_";
const CHECKSUM_LEN: usize = 4;

/// What `team init` prints once and `team join` reads on stdin: the team id, the key
/// epoch and the key, as `adtk1_` + base64url(team id ‖ epoch ‖ key ‖ checksum), where the
/// checksum is the first 4 bytes of SHA-256 over the prefix and the rest (catches a
/// truncated or mistyped paste). Zeroed on drop, redacted in `Debug`.
pub struct JoinKey(Zeroizing<String>);

impl fmt::Debug for JoinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinKey([redacted])")
    }
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Sha256::new();
    h.update(JOIN_PREFIX.as_bytes());
    h.update(payload);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

impl JoinKey {
    /// Encode a team's id (a UUID in text form) and key.
    pub fn encode(team: &str, key: &TeamKey) -> Result<Self> {
        let id = parse_uuid(team)?;
        let mut raw = Zeroizing::new(Vec::with_capacity(16 + 4 + KEY_LEN + CHECKSUM_LEN));
        raw.extend_from_slice(&id);
        raw.extend_from_slice(&key.epoch.to_be_bytes());
        raw.extend_from_slice(key.expose_bytes());
        let sum = checksum(&raw);
        raw.extend_from_slice(&sum);
        let mut s = String::from(JOIN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(raw.as_slice(), &mut s);
        Ok(Self(Zeroizing::new(s)))
    }

    /// The text to show the person once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Parse a pasted join key (surrounding whitespace ignored): the team id and key.
    /// The error never repeats the input.
    pub fn decode(text: &str) -> Result<(String, TeamKey)> {
        let bad = || {
            Error::invalid_input(
                "That is not a complete Authdeck join key (it starts with adtk1_): paste it again as `team init` printed it.",
            )
        };
        let text = text.trim();
        let body = text.strip_prefix(JOIN_PREFIX).ok_or_else(bad)?;
        let raw = Zeroizing::new(URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?);
        if raw.len() != 16 + 4 + KEY_LEN + CHECKSUM_LEN {
            return Err(bad());
        }
        let (payload, sum) = raw.split_at(raw.len() - CHECKSUM_LEN);
        if checksum(payload) != sum {
            return Err(bad());
        }
        let team = format_uuid(&payload[..16]);
        let epoch = u32::from_be_bytes([payload[16], payload[17], payload[18], payload[19]]);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&payload[20..]);
        Ok((team, TeamKey::from_bytes(bytes, epoch)))
    }

    /// Read one join key from a reader (stdin for `team join`), at most 4 KiB.
    pub fn read_from(mut reader: impl std::io::Read) -> Result<(String, TeamKey)> {
        let mut buf = Zeroizing::new(Vec::with_capacity(256));
        let mut chunk = [0u8; 256];
        loop {
            let n = reader.read(&mut chunk).map_err(|e| {
                Error::invalid_input("Could not read the join key.").with_detail(e.to_string())
            })?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 4096 {
                return Err(Error::invalid_input(
                    "The join key is far too long: paste only the key.",
                ));
            }
        }
        zeroize::Zeroize::zeroize(&mut chunk);
        let text = std::str::from_utf8(&buf)
            .map_err(|_| Error::invalid_input("The join key is not text."))?;
        Self::decode(text)
    }
}

fn parse_uuid(text: &str) -> Result<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return Err(Error::internal("team id is not a UUID"));
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| Error::internal("team id is not a UUID"))?;
    }
    Ok(out)
}

fn format_uuid(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A new random team id (UUID v4, text form).
pub fn new_team_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::internal("no randomness from the OS").with_detail(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(format_uuid(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: &str = "0b7f2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn ts(connection: &str, generation: i64) -> Scope<'_> {
        Scope::TokenSet {
            team: TEAM,
            connection,
            generation,
        }
    }

    #[test]
    fn seal_then_open_round_trips() {
        let key = TeamKey::generate(1).unwrap();
        let sealed = key.seal(&ts("c1", 3), b"refresh-token-canary").unwrap();
        assert_eq!(
            key.open(&ts("c1", 3), &sealed).unwrap().as_slice(),
            b"refresh-token-canary"
        );
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_generation_or_team_fails_to_open() {
        let key = TeamKey::generate(1).unwrap();
        let sealed = key.seal(&ts("c1", 3), b"secret").unwrap();
        assert!(
            key.open(&ts("c2", 3), &sealed).is_err(),
            "another connection"
        );
        assert!(
            key.open(&ts("c1", 4), &sealed).is_err(),
            "another generation"
        );
        let other_team = Scope::TokenSet {
            team: "11111111-2222-4333-8444-555555555555",
            connection: "c1",
            generation: 3,
        };
        assert!(key.open(&other_team, &sealed).is_err(), "another team");
        let as_client = Scope::ClientSecret {
            team: TEAM,
            client: "c1",
        };
        assert!(key.open(&as_client, &sealed).is_err(), "another kind");
        let child = Scope::ChildSecret {
            team: TEAM,
            connection: "c1",
        };
        let sealed_child = key.seal(&child, b"child").unwrap();
        assert!(key.open(&child, &sealed_child).is_ok());
        assert!(
            key.open(&ts("c1", 3), &sealed_child).is_err(),
            "a child secret is no token set"
        );
        assert!(
            key.open(&child, &sealed).is_err(),
            "a token set is no child secret"
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open(&ts("c1", 3), &tampered).is_err(), "altered");
    }

    #[test]
    fn the_wrong_key_fails_to_open() {
        let key = TeamKey::generate(1).unwrap();
        let other = TeamKey::generate(1).unwrap();
        let sealed = key.seal(&ts("c1", 1), b"secret").unwrap();
        let e = other.open(&ts("c1", 1), &sealed).unwrap_err();
        assert_eq!(e.code, ErrorCode::Storage);
        let next_epoch = TeamKey::generate(2).unwrap();
        let e = next_epoch.open(&ts("c1", 1), &sealed).unwrap_err();
        assert!(e.message.contains("another team key"), "{e:?}");
    }

    #[test]
    fn key_check_value_accepts_the_key_and_refuses_another() {
        let key = TeamKey::generate(1).unwrap();
        let check = key.check_value(TEAM).unwrap();
        key.verify_check_value(TEAM, &check).unwrap();
        let other = TeamKey::generate(1).unwrap();
        assert_eq!(
            other.verify_check_value(TEAM, &check).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert!(key
            .verify_check_value("11111111-2222-4333-8444-555555555555", &check)
            .is_err());
    }

    #[test]
    fn join_key_round_trips_and_rejects_damage_without_echoing() {
        let key = TeamKey::generate(7).unwrap();
        let join = JoinKey::encode(TEAM, &key).unwrap();
        assert!(join.expose().starts_with("adtk1_"));
        assert_eq!(format!("{join:?}"), "JoinKey([redacted])");
        let (team, back) = JoinKey::decode(&format!("  {}\n", join.expose())).unwrap();
        assert_eq!(team, TEAM);
        assert_eq!(back.epoch(), 7);
        assert_eq!(back.expose_bytes(), key.expose_bytes());
        let (_, from_reader) =
            JoinKey::read_from(format!("{}\n", join.expose()).as_bytes()).unwrap();
        assert_eq!(from_reader.expose_bytes(), key.expose_bytes());

        let text = join.expose();
        // One character changed (not the last, whose low bits base64 may ignore).
        let mut chars: Vec<char> = text.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        let damaged: String = chars.into_iter().collect();
        for bad in [
            damaged.as_str(),
            &text[..text.len() - 3],
            &text[6..],
            "adtk1_!!!!",
            "",
        ] {
            let e = JoinKey::decode(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput);
            assert!(
                bad.len() < 8 || !e.message.contains(&bad[6..]),
                "echoed the input"
            );
            assert!(e.detail.is_none());
        }
    }

    #[test]
    fn debug_shows_no_key_byte() {
        let key = TeamKey::from_bytes(Zeroizing::new([0xab; KEY_LEN]), 1);
        let shown = format!("{key:?}");
        assert_eq!(shown, "TeamKey([redacted], epoch 1)");
    }

    #[test]
    fn team_ids_are_uuid_v4_text() {
        let id = new_team_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(parse_uuid(&id).map(|b| format_uuid(&b)).unwrap(), id);
    }
}
