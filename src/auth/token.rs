//! Verifying Clerk session tokens: RS256 (or RS384/RS512) JWTs, with the key from
//! `CLERK_JWT_KEY` (no network) or from Clerk's JWKS, cached and refetched when a token names
//! a key id the cache does not hold: one fetch at a time, which concurrent callers share, and
//! no attempt, failed or not, sooner than the refetch floor after the last. No lock is held
//! while Clerk answers, so tokens whose keys are cached never wait for a fetch, and during a
//! Clerk outage an unknown key id is refused at once, not after another 5 s attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::clerk::model::Jwks;
use crate::config::Secret;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
/// Cached keys are refreshed after this long.
const KEYS_TTL: Duration = Duration::from_secs(300);

const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];

/// The claims of a Clerk session token that userhub reads.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    /// `pending` while the session still has a task to finish (Clerk's session tasks).
    #[serde(default)]
    pub sts: Option<String>,
    /// Expiry, Unix seconds (required).
    pub exp: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token is signed with an algorithm userhub does not accept")]
    Algorithm,
    #[error("the session token is signed with an unknown key")]
    UnknownKey,
    #[error("the session token's signature is invalid")]
    Signature,
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid yet")]
    NotYetValid,
    #[error("the session token was issued by someone else")]
    Issuer,
    #[error("the session token was issued for another origin")]
    AuthorizedParty,
    #[error("the session is pending: finish signing in first")]
    Pending,
    #[error("Clerk's signing keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

pub struct TokenVerifier {
    keys: Keys,
    verified: VerifiedTokens,
    /// An unknown `kid` triggers a refetch of the keys at most this often.
    refetch_floor: Duration,
    issuer: Option<String>,
    authorized_parties: Vec<String>,
}

enum Keys {
    /// `CLERK_JWT_KEY`: one key, whatever `kid` a token names.
    Static(DecodingKey),
    Jwks {
        source: JwksSource,
        http: reqwest::Client,
        cache: std::sync::Mutex<KeyCache>,
    },
}

/// Where the keys are: Clerk's Backend API (`{CLERK_API_URL}/jwks`, which needs the secret
/// key) or its Frontend API (`/.well-known/jwks.json`, public).
#[derive(Debug, Clone)]
pub struct JwksSource {
    pub url: String,
    /// Sent only to the Backend API, never to another host.
    pub bearer: Option<Secret>,
}

impl JwksSource {
    async fn fetch(&self, http: &reqwest::Client) -> Result<Jwks, String> {
        let mut request = http
            .get(&self.url)
            .header("Clerk-API-Version", crate::clerk::client::API_VERSION);
        if let Some(secret) = &self.bearer {
            request = request.bearer_auth(secret.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|err| format!("cannot reach {}: {}", self.url, err.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.url, response.status()));
        }
        response
            .json()
            .await
            .map_err(|err| format!("{} is not a JWKS: {}", self.url, err.without_url()))
    }
}

/// Tokens this process verified, with their claims, until they expire: a client sends the same
/// session token with every request for its lifetime (a minute for Clerk's), and a map look-up
/// costs far less than an RSA verification. Only tokens that passed every check are kept, the
/// time checks are made again at each use, and the key is the whole token, so a hit is the
/// same token, byte for byte. A key removed from Clerk's JWKS stops new tokens at once; tokens
/// it signed that were verified before stay good until they expire.
#[derive(Default)]
struct VerifiedTokens {
    tokens: std::sync::Mutex<HashMap<Box<str>, SessionClaims>>,
}

/// Most tokens kept: about 1 KiB each.
const VERIFIED_TOKENS_MAX: usize = 4096;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, SessionClaims>> {
        // Entries are inserted whole; a panic elsewhere cannot leave one half-written.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The claims of a token verified before, checked against the clock again.
    fn get(&self, token: &str) -> Result<Option<SessionClaims>, TokenError> {
        let mut tokens = self.lock();
        let Some(claims) = tokens.get(token) else {
            return Ok(None);
        };
        let now = unix_now();
        if now > claims.exp + LEEWAY_SECONDS {
            tokens.remove(token);
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(Some(claims.clone()))
    }

    fn insert(&self, token: &str, claims: &SessionClaims) {
        let mut tokens = self.lock();
        if tokens.len() >= VERIFIED_TOKENS_MAX {
            let now = unix_now();
            tokens.retain(|_, claims| now <= claims.exp + LEEWAY_SECONDS);
            if tokens.len() >= VERIFIED_TOKENS_MAX {
                // All still valid: more clients than the cache holds. Start again rather than
                // track recency on every hit.
                tokens.clear();
            }
        }
        tokens.insert(token.into(), claims.clone());
    }
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last attempt, successful or not, and its error if it failed.
    attempted_at: Option<Instant>,
    last_error: Option<String>,
    /// The fetch under way, shared by every caller that needs it.
    fetching: Option<KeyFetch>,
}

type KeyFetch = Shared<BoxFuture<'static, Result<Arc<Jwks>, String>>>;

impl KeyCache {
    fn store(&mut self, result: &Result<Arc<Jwks>, String>) {
        match result {
            Ok(jwks) => {
                self.keys = jwks
                    .keys
                    .iter()
                    .filter(|jwk| jwk.kty == "RSA")
                    .filter_map(|jwk| {
                        let key =
                            DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?)
                                .ok()?;
                        Some((jwk.kid.clone()?, key))
                    })
                    .collect();
                self.fetched_at = Some(Instant::now());
                self.last_error = None;
            }
            Err(err) => self.last_error = Some(err.clone()),
        }
    }
}

impl TokenVerifier {
    /// Verifies with one PEM public key.
    pub fn from_pem(pem: &str) -> Result<TokenVerifier, jsonwebtoken::errors::Error> {
        Ok(TokenVerifier {
            keys: Keys::Static(DecodingKey::from_rsa_pem(pem.as_bytes())?),
            verified: VerifiedTokens::default(),
            refetch_floor: Duration::ZERO,
            issuer: None,
            authorized_parties: Vec::new(),
        })
    }

    /// Verifies with the keys of a JWKS.
    pub fn from_jwks(source: JwksSource) -> TokenVerifier {
        TokenVerifier {
            keys: Keys::Jwks {
                source,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
                cache: std::sync::Mutex::new(KeyCache {
                    keys: HashMap::new(),
                    fetched_at: None,
                    attempted_at: None,
                    last_error: None,
                    fetching: None,
                }),
            },
            verified: VerifiedTokens::default(),
            refetch_floor: Duration::from_secs(10),
            issuer: None,
            authorized_parties: Vec::new(),
        }
    }

    pub fn with_refetch_floor(mut self, floor: Duration) -> TokenVerifier {
        self.refetch_floor = floor;
        self
    }

    pub fn with_issuer(mut self, issuer: Option<String>) -> TokenVerifier {
        self.issuer = issuer;
        self
    }

    pub fn with_authorized_parties(mut self, parties: Vec<String>) -> TokenVerifier {
        self.authorized_parties = parties
            .into_iter()
            .map(|party| party.trim().trim_end_matches('/').to_owned())
            .filter(|party| !party.is_empty())
            .collect();
        self
    }

    pub async fn verify(&self, token: &str) -> Result<SessionClaims, TokenError> {
        if let Some(claims) = self.verified.get(token)? {
            return Ok(claims);
        }
        let claims = self.verify_signature(token).await?;
        self.verified.insert(token, &claims);
        Ok(claims)
    }

    /// The whole check: signature, then claims.
    async fn verify_signature(&self, token: &str) -> Result<SessionClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Checked before any key is chosen: `none` and HMAC (with the public key as the
        // secret) never reach signature verification.
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = ALGORITHMS.to_vec();
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = decode::<SessionClaims>(token, &key, &validation)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidIssuer => TokenError::Issuer,
                    ErrorKind::InvalidSignature => TokenError::Signature,
                    ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                    _ => TokenError::Malformed,
                }
            })?
            .claims;
        if !self.authorized_parties.is_empty() {
            let party = claims.azp.as_deref().map(|azp| azp.trim_end_matches('/'));
            if !party.is_some_and(|party| self.authorized_parties.iter().any(|p| p == party)) {
                return Err(TokenError::AuthorizedParty);
            }
        }
        if claims.sts.as_deref() == Some("pending") {
            return Err(TokenError::Pending);
        }
        Ok(claims)
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let (source, http, cache) = match &self.keys {
            Keys::Static(key) => return Ok(key.clone()),
            Keys::Jwks {
                source,
                http,
                cache,
            } => (source, http, cache),
        };
        let kid = kid.ok_or(TokenError::UnknownKey)?;
        let lock = || {
            // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let fetch = {
            let mut cached = lock();
            let fresh = cached.fetched_at.is_some_and(|at| at.elapsed() < KEYS_TTL);
            let known = cached.keys.get(kid).cloned();
            match (known, &cached.fetching) {
                (Some(key), _) if fresh => return Ok(key),
                (_, Some(fetching)) => fetching.clone(),
                (known, None) => {
                    let recently = cached
                        .attempted_at
                        .is_some_and(|at| at.elapsed() < self.refetch_floor);
                    if recently {
                        // Stale keys are better than none while Clerk is unreachable.
                        return match (known, &cached.last_error) {
                            (Some(key), _) => Ok(key),
                            (None, Some(err)) => Err(TokenError::KeysUnavailable(err.clone())),
                            (None, None) => Err(TokenError::UnknownKey),
                        };
                    }
                    let (source, http) = (source.clone(), http.clone());
                    let fetch: KeyFetch = async move { source.fetch(&http).await.map(Arc::new) }
                        .boxed()
                        .shared();
                    cached.fetching = Some(fetch.clone());
                    cached.attempted_at = Some(Instant::now());
                    fetch
                }
            }
        };
        let result = fetch.clone().await;
        let mut cached = lock();
        if cached
            .fetching
            .as_ref()
            .is_some_and(|fetching| fetching.ptr_eq(&fetch))
        {
            cached.fetching = None;
            cached.store(&result);
        }
        match (cached.keys.get(kid), result) {
            (Some(key), Ok(_)) => Ok(key.clone()),
            (Some(key), Err(err)) => {
                tracing::warn!(error = %err, "cannot refresh Clerk's signing keys; using the cached ones");
                Ok(key.clone())
            }
            (None, Ok(_)) => Err(TokenError::UnknownKey),
            (None, Err(err)) => Err(TokenError::KeysUnavailable(err)),
        }
    }
}
