//! SeaORM entities: userhub's tables as the database sees them.
//!
//! These types stay inside the persistence boundary. The GraphQL layer has types of its own
//! (`src/graphql/types/`), so a column can change without changing the public API.

pub mod activity;
pub mod audit_event;
pub mod bulk_job;
pub mod clerk_tombstone;
pub mod invitation;
pub mod lecturer_profile;
pub mod organisation;
pub mod prelude;
pub mod role;
pub mod sign_in;
pub mod sync_run;
pub mod user;
pub mod user_change;
pub mod webhook_delivery;
