//! The server secret API keys are hashed under.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;
use base64::Engine as _;

use crate::StoreError;

/// The HMAC key, loaded from its file, and the sealing key derived from it.
pub(crate) struct ServerSecret {
    key: hmac::Key,
    seal: aws_lc_rs::aead::LessSafeKey,
    id: String,
    path: PathBuf,
}

impl ServerSecret {
    /// Reads the secret file; creates it (32 random bytes, mode 0600) when it
    /// does not exist and `create` is set.
    pub(crate) fn load_or_create(path: &Path, create: bool) -> Result<Self, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => Self::create(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Io(format!(
                    "server secret file {} does not exist; with PostgreSQL every gateway needs the same secret: \
                     create it once (`head -c 32 /dev/urandom | base64 > {}`) and give it to each gateway",
                    path.display(),
                    path.display()
                )));
            }
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "cannot read server secret {}: {e}",
                    path.display()
                )));
            }
        };
        check_permissions(path)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| StoreError::Io(format!("server secret {} is not base64", path.display())))?;
        if bytes.len() < 32 {
            return Err(StoreError::Io(format!(
                "server secret {} holds {} bytes; at least 32 are needed",
                path.display(),
                bytes.len()
            )));
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        let tag = hmac::sign(&key, b"warden server secret id");
        // A separate key for sealing data at rest, derived so that the HMAC
        // key itself never encrypts anything.
        let derived = hmac::sign(&key, b"warden sealing key v1");
        let seal = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, derived.as_ref())
            .map(aws_lc_rs::aead::LessSafeKey::new)
            .map_err(|_| StoreError::Io("cannot derive the sealing key".into()))?;
        Ok(Self {
            key,
            seal,
            id: crate::hex(&tag.as_ref()[..8]),
            path: path.to_path_buf(),
        })
    }

    fn create(path: &Path) -> Result<String, StoreError> {
        use rand::RngCore as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = path.parent() {
            crate::db::create_private_dir(dir)?;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Io(format!("cannot create server secret {}: {e}", path.display())))?;
        f.write_all(format!("{text}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::Io(format!("cannot write server secret {}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), "created the server secret");
        Ok(text)
    }

    /// HMAC-SHA-256 of `data`.
    pub(crate) fn tag(&self, data: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, data)
    }

    /// Constant-time check of `tag` against `data`.
    pub(crate) fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, data, tag).is_ok()
    }

    /// AES-256-GCM with a random nonce; `aad` binds the ciphertext to its row.
    /// Returns base64 of nonce || ciphertext || tag.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, StoreError> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        use rand::RngCore as _;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| StoreError::Io("cannot seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Reverses [`ServerSecret::seal`]; `None` when tampered with or sealed
    /// under another secret or for another row.
    pub(crate) fn open(&self, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        let raw = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
        let (nonce, rest) = raw.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.seal.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
        Some(plain.to_vec())
    }

    /// A public identifier of the secret (not derived reversibly from it).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// A secret readable by group or others is refused: the secret is what keeps
/// a copied database's key hashes useless.
fn check_permissions(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .map_err(|e| StoreError::Io(format!("cannot read server secret {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Io(format!(
            "server secret {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
            path.display()
        )));
    }
    Ok(())
}
