//! Encryption and keyed hashing.
//!
//! Every stored object is sealed with AES-256-GCM (aws-lc-rs): a fresh random 96-bit
//! nonce per object, the object's name as associated data (a blob's 32 id bytes; a
//! file's path such as `snapshots/<hex>`; `pack/<hex>` for a pack header), laid out as
//! `nonce (12) || ciphertext || tag (16)`. Binding the name means a valid ciphertext
//! moved to another name fails to open.
//!
//! Keys are enveloped: the repository's [`DataKeys`] (an encryption key and a blob-id
//! key) are random and never change; a [`MasterKey`] from a [`KeyProvider`] wraps them
//! in a key object. Rotating the master key rewrites only key objects.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};
use crate::id::Id;

/// Bytes added to every sealed object: nonce plus tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

/// Fills `buf` from the operating system's CSPRNG (`getrandom(2)` on Linux).
///
/// Not aws-lc's generator: seeding it costs about 30 ms of jitter sampling on the first
/// call in every process, and every backup, restore and command starts a process.
pub fn fill_random(buf: &mut [u8]) {
    // The system RNG failing is not a condition any caller can handle.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// Seals `plaintext` under `key` with `aad`, returning `nonce || ciphertext || tag`.
fn seal_with(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .expect("AES-GCM sealing fails only for inputs over 64 GiB");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens what [`seal_with`] made; `None` when the key, aad or bytes do not match.
fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let len = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}

fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key is valid for AES-256"))
}

/// The repository's data keys: they encrypt every object and key the blob ids.
pub struct DataKeys {
    raw: [u8; 64],
    encryption: LessSafeKey,
}

impl DataKeys {
    /// New random keys, for `init`.
    pub fn generate() -> DataKeys {
        let mut raw = [0u8; 64];
        fill_random(&mut raw);
        DataKeys::from_raw(raw)
    }

    fn from_raw(raw: [u8; 64]) -> DataKeys {
        let mut enc = [0u8; 32];
        enc.copy_from_slice(&raw[..32]);
        DataKeys {
            raw,
            encryption: aes_key(&enc),
        }
    }

    fn id_key(&self) -> &[u8; 32] {
        self.raw[32..].try_into().expect("64-byte key material")
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(self.id_key(), plaintext).as_bytes())
    }

    /// The seed of the chunker's gear table, derived from the id key so that chunk
    /// boundaries do not reveal content to someone without the key.
    pub fn chunker_seed(&self) -> u64 {
        let h = blake3::keyed_hash(self.id_key(), b"repairops-vault chunker seed v1");
        u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Seals an object, binding it to `aad` (its id or path).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.encryption, aad, plaintext)
    }

    /// Opens a sealed object; `object` names it in the error.
    pub fn open(&self, aad: &[u8], sealed: &[u8], object: &str) -> Result<Vec<u8>> {
        open_with(&self.encryption, aad, sealed).ok_or_else(|| {
            VaultError::corrupt(
                object,
                "authentication failed (the stored bytes were changed, truncated or moved)",
            )
        })
    }
}

/// A master key: wraps the data keys in a key object.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut k = [0u8; 32];
        fill_random(&mut k);
        MasterKey(k)
    }

    /// Wraps the data keys; `aad` is the key object's path.
    pub(crate) fn wrap(&self, keys: &DataKeys, aad: &[u8]) -> Vec<u8> {
        seal_with(&aes_key(&self.0), aad, &keys.raw)
    }

    /// Unwraps data keys; `None` when this master key is not the one that wrapped them.
    pub(crate) fn unwrap_keys(&self, wrapped: &[u8], aad: &[u8]) -> Option<DataKeys> {
        let raw = open_with(&aes_key(&self.0), aad, wrapped)?;
        let raw: [u8; 64] = raw.try_into().ok()?;
        Some(DataKeys::from_raw(raw))
    }

    /// The key file text for this key.
    pub fn to_key_file(&self) -> String {
        format!(
            "# repairops-vault key file. Anyone holding it can read the backups it opens:\n\
             # keep it secret, and keep a copy somewhere other than the repository.\n\
             {KEY_FILE_TAG} {}\n",
            hex::encode(self.0)
        )
    }

    /// Parses key file text.
    pub fn from_key_file(text: &str) -> Option<MasterKey> {
        let line = text.lines().map(str::trim).find(|l| l.starts_with(KEY_FILE_TAG))?;
        let hex_part = line[KEY_FILE_TAG.len()..].trim();
        let mut k = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut k).ok()?;
        Some(MasterKey(k))
    }
}

const KEY_FILE_TAG: &str = "repairops-vault-key-v1";

/// How a key object's master key is derived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Kdf {
    /// The master key is the 32 random bytes of a key file.
    KeyFile,
    /// The master key is Argon2id(passphrase, salt).
    Argon2id {
        #[serde(with = "b64")]
        salt: Vec<u8>,
        /// Memory in KiB.
        m_kib: u32,
        /// Iterations.
        t: u32,
        /// Lanes.
        p: u32,
    },
}

/// Where a master key comes from. Key files and passphrases are built in; an OS keyring
/// or a cloud KMS is another implementation of this trait.
pub trait KeyProvider: Send + Sync {
    /// The derivation a new key object made with this provider records.
    fn new_kdf(&self) -> Kdf;
    /// The master key for a key object with derivation `kdf`, or `None` when this
    /// provider cannot make keys of that kind.
    fn master_key(&self, kdf: &Kdf) -> Result<Option<MasterKey>>;
}

impl KeyProvider for MasterKey {
    fn new_kdf(&self) -> Kdf {
        Kdf::KeyFile
    }

    fn master_key(&self, kdf: &Kdf) -> Result<Option<MasterKey>> {
        Ok(matches!(kdf, Kdf::KeyFile).then(|| self.clone()))
    }
}

/// A passphrase, stretched with Argon2id.
pub struct Passphrase {
    secret: String,
    /// Memory cost for new key objects, KiB.
    pub m_kib: u32,
    /// Iterations for new key objects.
    pub t: u32,
}

impl Passphrase {
    /// Default cost: 64 MiB, 3 iterations (about 0.2 s on a laptop core).
    pub fn new(secret: impl Into<String>) -> Passphrase {
        Passphrase {
            secret: secret.into(),
            m_kib: 64 * 1024,
            t: 3,
        }
    }
}

/// Upper bounds on the Argon2 cost a repository may ask for, so a hostile key object
/// cannot make opening it take gigabytes or hours.
const MAX_M_KIB: u32 = 4 * 1024 * 1024;
const MAX_T: u32 = 64;

impl KeyProvider for Passphrase {
    fn new_kdf(&self) -> Kdf {
        let mut salt = vec![0u8; 16];
        fill_random(&mut salt);
        Kdf::Argon2id {
            salt,
            m_kib: self.m_kib,
            t: self.t,
            p: 1,
        }
    }

    fn master_key(&self, kdf: &Kdf) -> Result<Option<MasterKey>> {
        let Kdf::Argon2id { salt, m_kib, t, p } = kdf else {
            return Ok(None);
        };
        if *m_kib > MAX_M_KIB || *t > MAX_T || *p == 0 || *p > 16 {
            return Err(VaultError::corrupt(
                "keys/",
                format!("unreasonable Argon2id cost m={m_kib} KiB t={t} p={p}"),
            ));
        }
        let params = argon2::Params::new(*m_kib, *t, *p, Some(32))
            .map_err(|e| VaultError::corrupt("keys/", format!("bad Argon2id parameters: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(self.secret.as_bytes(), salt, &mut out)
            .map_err(|e| VaultError::corrupt("keys/", format!("Argon2id failed: {e}")))?;
        Ok(Some(MasterKey(out)))
    }
}

/// Base64 (standard, padded) for byte fields in JSON.
pub(crate) mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_binds_aad_and_detects_flips() {
        let keys = DataKeys::generate();
        let sealed = keys.seal(b"snapshots/1", b"hello shop");
        assert_eq!(keys.open(b"snapshots/1", &sealed, "x").unwrap(), b"hello shop");
        assert!(
            keys.open(b"snapshots/2", &sealed, "x").is_err(),
            "moved object must not open"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(keys.open(b"snapshots/1", &bad, "x").is_err(), "flip at {i} undetected");
        }
        assert!(keys.open(b"snapshots/1", &sealed[..sealed.len() - 1], "x").is_err());
        assert!(keys.open(b"snapshots/1", &[], "x").is_err());
    }

    #[test]
    fn two_seals_of_same_plaintext_differ() {
        let keys = DataKeys::generate();
        assert_ne!(keys.seal(b"a", b"same"), keys.seal(b"a", b"same"));
    }

    #[test]
    fn master_key_wraps_and_wrong_key_fails() {
        let keys = DataKeys::generate();
        let mk = MasterKey::generate();
        let wrapped = mk.wrap(&keys, b"keys/k");
        let back = mk.unwrap_keys(&wrapped, b"keys/k").unwrap();
        assert_eq!(back.raw, keys.raw);
        assert!(MasterKey::generate().unwrap_keys(&wrapped, b"keys/k").is_none());
    }

    #[test]
    fn key_file_text_round_trips() {
        let mk = MasterKey::generate();
        let parsed = MasterKey::from_key_file(&mk.to_key_file()).unwrap();
        assert_eq!(parsed.0, mk.0);
        assert!(MasterKey::from_key_file("nonsense").is_none());
        assert!(MasterKey::from_key_file("repairops-vault-key-v1 abcd").is_none());
    }

    #[test]
    fn passphrase_derivation_is_deterministic_per_salt() {
        let mut p = Passphrase::new("correct horse");
        p.m_kib = 256;
        p.t = 1;
        let kdf = p.new_kdf();
        let a = p.master_key(&kdf).unwrap().unwrap();
        let b = p.master_key(&kdf).unwrap().unwrap();
        assert_eq!(a.0, b.0);
        let other = Passphrase::new("wrong horse").master_key(&kdf).unwrap().unwrap();
        assert_ne!(a.0, other.0);
        assert!(p.master_key(&Kdf::KeyFile).unwrap().is_none());
    }
}
