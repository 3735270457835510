use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(pk_uuid(SyncRuns::Id))
                    .col(timestamp_with_time_zone(SyncRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(SyncRuns::FinishedAt))
                    .col(timestamp_with_time_zone(SyncRuns::HeartbeatAt))
                    .col(string_len(SyncRuns::Status, 16))
                    .col(big_integer(SyncRuns::Seen).default(0))
                    .col(big_integer(SyncRuns::Created).default(0))
                    .col(big_integer(SyncRuns::Updated).default(0))
                    .col(big_integer(SyncRuns::Deactivated).default(0))
                    .col(text_null(SyncRuns::Error))
                    .col(string(SyncRuns::TriggeredBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_runs_status")
                    .table(SyncRuns::Table)
                    .col(SyncRuns::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SyncRuns::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    StartedAt,
    FinishedAt,
    HeartbeatAt,
    Status,
    Seen,
    Created,
    Updated,
    Deactivated,
    Error,
    TriggeredBy,
}
