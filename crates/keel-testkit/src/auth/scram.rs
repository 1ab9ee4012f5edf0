//! The server side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as mongod runs it:
//! stored keys derived once from the password, a server-first message with a fresh nonce, and
//! proof verification with a server signature in the final message.
//!
//! MongoDB specifics (auth specification): SCRAM-SHA-1 hashes the password as
//! `hex(md5("<user>:mongo:<password>"))` before PBKDF2; SCRAM-SHA-256 SASLprep's it. mongod's
//! default iteration counts are 10 000 (SHA-1) and 15 000 (SHA-256).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::digest::{Digest, KeyInit};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::Sha256;

/// A SCRAM hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Sha1,
    Sha256,
}

impl Mechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-1" => Some(Self::Sha1),
            "SCRAM-SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    fn iterations(self) -> u32 {
        match self {
            Self::Sha1 => 10_000,
            Self::Sha256 => 15_000,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => mac::<Hmac<Sha1>>(key, data),
            Self::Sha256 => mac::<Hmac<Sha256>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash(b"").len()];
        // Output length equals the PRF's: the only error pbkdf2 reports cannot happen.
        let _ = match self {
            Self::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out),
        };
        out
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(_) => Vec::new(),
    }
}

/// What the server stores for one user and mechanism (never the password).
#[derive(Clone)]
pub(crate) struct StoredKeys {
    mechanism: Mechanism,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for StoredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys derived from a password are as sensitive as the password.
        f.debug_struct("StoredKeys")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl StoredKeys {
    /// Derives the keys for `user`/`password` with a random salt and mongod's default
    /// iteration count (unless `iterations` overrides it).
    pub(crate) fn derive(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        iterations: Option<u32>,
    ) -> Self {
        let salt: [u8; 16] = rand::random();
        let iterations = iterations.unwrap_or_else(|| mechanism.iterations());
        Self::derive_with(mechanism, user, password, &salt, iterations)
    }

    fn derive_with(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let prepared = match mechanism {
            Mechanism::Sha1 => hex(&Md5::digest(format!("{user}:mongo:{password}").as_bytes())),
            // A password SASLprep rejects is used as given (it can then never match a driver's).
            Mechanism::Sha256 => stringprep::saslprep(password)
                .map_or_else(|_| password.to_owned(), |p| p.into_owned()),
        };
        let salted = mechanism.salted_password(prepared.as_bytes(), salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        Self {
            mechanism,
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, b"Server Key"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Why a conversation failed (always answered as `AuthenticationFailed`; the detail is for
/// tests, never for the client).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScramError {
    Malformed(&'static str),
    WrongProof,
}

/// The user name of a client-first message, after the gs2 header (`n,,n=<user>,r=<nonce>`).
pub(crate) fn client_first_user(message: &str) -> Result<String, ScramError> {
    let bare = message
        .strip_prefix("n,,")
        .ok_or(ScramError::Malformed("channel binding is not supported"))?;
    let user = bare
        .split(',')
        .next()
        .and_then(|p| p.strip_prefix("n="))
        .ok_or(ScramError::Malformed("missing user name"))?;
    Ok(user.replace("=2C", ",").replace("=3D", "="))
}

/// A conversation after the server-first message.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    keys: StoredKeys,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Conversation {
    /// Answers a client-first message with the server-first message.
    pub(crate) fn start(
        keys: &StoredKeys,
        client_first: &str,
    ) -> Result<(Self, String), ScramError> {
        let server_nonce: [u8; 24] = rand::random();
        Self::start_with(keys, client_first, &B64.encode(server_nonce))
    }

    fn start_with(
        keys: &StoredKeys,
        client_first: &str,
        server_nonce: &str,
    ) -> Result<(Self, String), ScramError> {
        let bare = client_first
            .strip_prefix("n,,")
            .ok_or(ScramError::Malformed("channel binding is not supported"))?;
        let client_nonce = bare
            .split(',')
            .find_map(|p| p.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("missing client nonce"))?;
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&keys.salt),
            keys.iterations
        );
        let conversation = Self {
            keys: keys.clone(),
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((conversation, server_first))
    }

    /// Checks the client-final message's proof; returns the server-final message.
    pub(crate) fn finish(&self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        let mut parts = without_proof.split(',');
        if parts.next() != Some("c=biws") {
            return Err(ScramError::Malformed("unexpected channel binding"));
        }
        if parts.next().and_then(|r| r.strip_prefix("r=")) != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce mismatch"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let m = self.keys.mechanism;
        let signature = m.hmac(&self.keys.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::WrongProof);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if m.hash(&client_key) != self.keys.stored_key {
            return Err(ScramError::WrongProof);
        }
        let server_signature = m.hmac(&self.keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

/// The client side of the final step, for tests: the client-final message answering
/// `server_first` for `client_first_bare` (as a driver computes it).
#[cfg(test)]
pub(crate) fn client_final(
    mechanism: Mechanism,
    user: &str,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|p| p.strip_prefix(k))
            .unwrap_or_default()
            .to_owned()
    };
    let nonce = field("r=");
    let salt = B64.decode(field("s=")).unwrap_or_default();
    let iterations: u32 = field("i=").parse().unwrap_or(1);
    let keys = StoredKeys::derive_with(mechanism, user, password, &salt, iterations);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&keys.stored_key, auth_message.as_bytes());
    // ClientKey = HMAC(SaltedPassword, "Client Key"), recomputed the way a client does.
    let prepared = match mechanism {
        Mechanism::Sha1 => hex(&Md5::digest(format!("{user}:mongo:{password}").as_bytes())),
        Mechanism::Sha256 => password.to_owned(),
    };
    let salted = mechanism.salted_password(prepared.as_bytes(), &salt, iterations);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", B64.encode(proof))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's SCRAM-SHA-256 example (the plain SCRAM exchange, no MongoDB hashing:
    /// SASLprep leaves "pencil" unchanged).
    #[test]
    fn rfc_7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = StoredKeys::derive_with(Mechanism::Sha256, "user", "pencil", &salt, 4096);
        let (conv, server_first) = Conversation::start_with(
            &keys,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = conv
            .finish(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let wrong = conv.finish(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        assert_eq!(wrong, Err(ScramError::WrongProof));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let keys = StoredKeys::derive_with(Mechanism::Sha1, "u", "p", b"salt", 1);
        assert!(Conversation::start_with(&keys, "p=tls,,n=u,r=x", "s").is_err());
        assert!(Conversation::start_with(&keys, "n,,n=u", "s").is_err());
        let (conv, _) = Conversation::start_with(&keys, "n,,n=u,r=abc", "def").unwrap();
        for bad in [
            "",
            "c=biws,r=abcdef",
            "c=eSws,r=abcdef,p=AA==",
            "c=biws,r=zzz,p=AA==",
            "c=biws,r=abcdef,p=!!",
        ] {
            assert!(conv.finish(bad).is_err(), "{bad}");
        }
        assert_eq!(client_first_user("n,,n=a=2Cb=3D,r=x").unwrap(), "a,b=");
    }
}
