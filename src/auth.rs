//! Who is calling, and what they may do.
//!
//! - `token`: verifies Clerk session tokens (RS256 JWTs) locally.
//! - `caller`: turns a verified token into a `Caller`, from userhub's own database (fetching
//!   from Clerk a user whose webhook has not arrived yet).
//! - `access`: every access rule, in one place; resolvers and services ask it.

pub mod access;
pub mod caller;
pub mod token;

pub use access::UserScope;
pub use caller::{Actor, Authenticator, Caller};
pub use token::{SessionClaims, TokenError, TokenVerifier};
