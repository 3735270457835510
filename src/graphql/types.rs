//! The GraphQL object types, one file each. They wrap the entity models without exposing them.

pub mod audit_event;
pub mod bulk_job;
pub mod connection;
pub mod invitation;
pub mod lecturer_profile;
pub mod organisation;
pub mod organisation_stats;
pub mod role;
pub mod sign_in;
pub mod sync;
pub mod user;
pub mod user_change;
pub mod workload;

pub use audit_event::AuditEvent;
pub use invitation::Invitation;
pub use lecturer_profile::{Date, LecturerProfile};
pub use organisation::Organisation;
pub use organisation_stats::OrganisationStats;
pub use role::Role;
pub use sign_in::SignIn;
pub use user::User;
pub use user_change::{SyncProgress, UserChange};
pub use workload::{Activity, ActivityChange, OrganisationWorkload, Workload};
