//! The emulator's RS256 signing key: session tokens are signed with it, and its public half
//! is served as a JWKS, exactly as Clerk does.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use crate::clerk::model::Jwk;

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    public_pem: String,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key with a random key id.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let private_pem = private.to_pkcs8_pem(LineEnding::LF)?;
        let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF)?;
        let kid = format!("ins_{}", super::random_id(24));
        let jwk = Jwk {
            kid: Some(kid.clone()),
            alg: Some("RS256".to_owned()),
            usage: Some("sig".to_owned()),
            kty: "RSA".to_owned(),
            n: Some(URL_SAFE_NO_PAD.encode(private.n().to_bytes_be())),
            e: Some(URL_SAFE_NO_PAD.encode(private.e().to_bytes_be())),
        };
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes())?,
            jwk,
            public_pem,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The public key as PEM, what `CLERK_JWT_KEY` holds.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        self.sign_as(&self.kid, claims)
    }

    /// Signs while naming another key id: a forgery, for tests of refused tokens.
    pub fn sign_as<T: Serialize>(&self, kid: &str, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}
