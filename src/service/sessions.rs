//! From a session token to a `Caller`: verify the token, then find the user in userhub's
//! database, which is what decides their role. A user Clerk knows but userhub does not yet
//! (their `user.created` webhook has not arrived) is fetched from Clerk and stored first.

use std::sync::{Mutex, PoisonError};

use entity::user;
use hashlink::LruCache;

use super::freshness::Stamp;
use super::users;
use super::{Origin, Services, Source};
use crate::auth::{Actor, Caller, TokenError, TokenVerifier};
use crate::error::AppError;

pub struct Authenticator {
    verifier: TokenVerifier,
    services: Services,
    /// Users found for a token's subject, with the stamp of when they were read
    /// (`freshness.rs`): a caller's many requests between two changes read their row once.
    known: Mutex<LruCache<String, (Stamp, user::Model)>>,
}

/// Callers remembered at once: a user row is well under a kilobyte.
const KNOWN_CALLERS: usize = 10_000;

impl Authenticator {
    pub fn new(verifier: TokenVerifier, services: Services) -> Authenticator {
        Authenticator {
            verifier,
            services,
            known: Mutex::new(LruCache::new(KNOWN_CALLERS)),
        }
    }

    /// No credentials make an anonymous caller; bad ones are an error, never anonymity.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Caller, AppError> {
        Ok(self.authenticate_with(token, None).await?.0)
    }

    /// `authenticate`, reusing the caller's row read at `stamp` (taken before this call) when
    /// nothing has committed since.
    pub async fn authenticate_at(
        &self,
        token: Option<&str>,
        stamp: Option<&Stamp>,
    ) -> Result<Caller, AppError> {
        Ok(self.authenticate_with(token, stamp).await?.0)
    }

    /// `authenticate_at`, with the moment the token expires (Unix seconds) for a signed-in
    /// caller: a WebSocket outlives the request that opened it, and closes then.
    pub async fn authenticate_session_at(
        &self,
        token: Option<&str>,
        stamp: Option<&Stamp>,
    ) -> Result<(Caller, Option<u64>), AppError> {
        self.authenticate_with(token, stamp).await
    }

    async fn authenticate_with(
        &self,
        token: Option<&str>,
        stamp: Option<&Stamp>,
    ) -> Result<(Caller, Option<u64>), AppError> {
        let Some(token) = token else {
            return Ok((Caller::Anonymous, None));
        };
        let claims = self.verifier.verify(token).await.map_err(|err| match err {
            TokenError::KeysUnavailable(reason) => AppError::Upstream(reason),
            other => AppError::Unauthenticated(other.to_string()),
        })?;
        let user = match self.remembered(&claims.sub, stamp) {
            Some(user) => user,
            None => match users::find_by_clerk_id(&self.services.db, &claims.sub).await? {
                Some(user) => {
                    self.remember(&claims.sub, stamp, &user);
                    user
                }
                None => self.fetch_from_clerk(&claims.sub).await?,
            },
        };
        if !user.is_active {
            return Err(AppError::Forbidden(
                "this account has been removed".to_owned(),
            ));
        }
        if user.banned {
            return Err(AppError::Forbidden("this account is suspended".to_owned()));
        }
        let caller = Caller::User(Box::new(Actor {
            user,
            session_id: claims.sid,
        }));
        Ok((caller, Some(claims.exp)))
    }

    fn remembered(&self, clerk_id: &str, stamp: Option<&Stamp>) -> Option<user::Model> {
        let stamp = stamp?;
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        match known.get(clerk_id) {
            Some((read_at, user)) if read_at == stamp => Some(user.clone()),
            _ => None,
        }
    }

    fn remember(&self, clerk_id: &str, stamp: Option<&Stamp>, user: &user::Model) {
        if let Some(stamp) = stamp {
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            known.insert(clerk_id.to_owned(), (stamp.clone(), user.clone()));
        }
    }

    async fn fetch_from_clerk(&self, clerk_id: &str) -> Result<user::Model, AppError> {
        let Services {
            db, clerk, events, ..
        } = &self.services;
        let clerk_user = clerk
            .get_user(clerk_id)
            .await
            .map_err(|err| AppError::Upstream(err.to_string()))?
            .ok_or_else(|| AppError::Unauthenticated("Clerk does not know this user".to_owned()))?;
        let profile = users::ClerkProfile::of(&clerk_user)
            .ok_or_else(|| AppError::Forbidden("this account has no email address".to_owned()))?;
        let origin = Origin {
            actor: "clerk".to_owned(),
            source: Source::Api,
            correlation_id: None,
        };
        Ok(users::upsert_from_clerk(db, events, &origin, profile)
            .await?
            .user()
            .clone())
    }
}
