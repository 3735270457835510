pub use super::audit_event::Entity as AuditEvent;
pub use super::clerk_tombstone::Entity as ClerkTombstone;
pub use super::invitation::Entity as Invitation;
pub use super::lecturer_profile::Entity as LecturerProfile;
pub use super::organisation::Entity as Organisation;
pub use super::sync_run::Entity as SyncRun;
pub use super::user::Entity as User;
pub use super::webhook_delivery::Entity as WebhookDelivery;
