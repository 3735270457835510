use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::Action))
                    .col(string_len(AuditEvents::SubjectType, 32))
                    .col(string(AuditEvents::SubjectId))
                    .col(json_binary_null(AuditEvents::Before))
                    .col(json_binary_null(AuditEvents::After))
                    .col(string_len(AuditEvents::Source, 16))
                    .col(string_null(AuditEvents::CorrelationId))
                    .to_owned(),
            )
            .await?;
        // A subject's trail, newest first, is the common read.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_subject")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::SubjectType)
                    .col(AuditEvents::SubjectId)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_actor")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Actor)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OccurredAt,
    Actor,
    Action,
    SubjectType,
    SubjectId,
    Before,
    After,
    Source,
    CorrelationId,
}
