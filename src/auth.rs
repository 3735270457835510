//! Who is calling, and what they may do.
//!
//! - `token`: verifies Clerk session tokens (RS256 JWTs) locally.
//! - `caller`: who is calling (`Caller`, `Actor`) and the credentials a request carries;
//!   `service::sessions` turns a verified token into a caller.
//! - `access`: every access rule, in one place; resolvers and services ask it.

pub mod access;
pub mod caller;
pub mod token;

pub use access::{Requester, Scope, UserScope};
pub use caller::{Actor, Caller};
pub use token::{SessionClaims, TokenError, TokenVerifier};
