//! Schema migrations for SQLite and PostgreSQL, one file per table, applied in order.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_organisations;
mod m20261124_000002_create_users;
mod m20261124_000003_create_invitations;
mod m20261124_000004_create_audit_events;
mod m20261124_000005_create_webhook_deliveries;
mod m20261124_000006_create_sync_runs;
mod m20261124_000007_one_running_sync;
mod m20261124_000008_create_clerk_tombstones;
mod m20261207_000009_create_lecturer_profiles;
mod m20261207_000010_index_audit_events_by_time;
mod m20261207_000011_create_activities;
mod m20261207_000012_create_sign_ins;
mod m20261207_000013_create_user_changes;
mod m20261207_000014_create_bulk_jobs;
mod m20261208_000015_bulk_job_heartbeat;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_organisations::Migration),
            Box::new(m20261124_000002_create_users::Migration),
            Box::new(m20261124_000003_create_invitations::Migration),
            Box::new(m20261124_000004_create_audit_events::Migration),
            Box::new(m20261124_000005_create_webhook_deliveries::Migration),
            Box::new(m20261124_000006_create_sync_runs::Migration),
            Box::new(m20261124_000007_one_running_sync::Migration),
            Box::new(m20261124_000008_create_clerk_tombstones::Migration),
            Box::new(m20261207_000009_create_lecturer_profiles::Migration),
            Box::new(m20261207_000010_index_audit_events_by_time::Migration),
            Box::new(m20261207_000011_create_activities::Migration),
            Box::new(m20261207_000012_create_sign_ins::Migration),
            Box::new(m20261207_000013_create_user_changes::Migration),
            Box::new(m20261207_000014_create_bulk_jobs::Migration),
            Box::new(m20261208_000015_bulk_job_heartbeat::Migration),
        ]
    }
}
