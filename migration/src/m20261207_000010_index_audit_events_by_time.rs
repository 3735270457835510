use sea_orm_migration::prelude::*;

/// The audit log read by date range (`auditLog(filter: { occurredFrom, occurredBefore })`, its
/// CSV export) finds the range by this index rather than by reading the whole trail.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const INDEX: &str = "idx_audit_events_occurred_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    OccurredAt,
}
