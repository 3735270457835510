use sea_orm_migration::{prelude::*, schema::*};

/// Bulk operations as jobs: one row per `suspendUsers`, `unsuspendUsers`, `removeUsers` or
/// `updateUsers`, with its progress and each user's outcome, as `sync_runs` records a sync.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BulkJobs::Table)
                    .col(uuid(BulkJobs::Id).primary_key())
                    .col(string_len(BulkJobs::Kind, 16))
                    .col(string_len(BulkJobs::Status, 16))
                    .col(boolean(BulkJobs::DryRun))
                    .col(uuid(BulkJobs::RequestedBy))
                    .col(integer(BulkJobs::Total))
                    .col(integer(BulkJobs::Done))
                    .col(integer(BulkJobs::Changed))
                    .col(integer(BulkJobs::Unchanged))
                    .col(integer(BulkJobs::Refused))
                    .col(text(BulkJobs::Results))
                    .col(text_null(BulkJobs::Error))
                    .col(timestamp_with_time_zone(BulkJobs::CreatedAt))
                    .col(timestamp_with_time_zone_null(BulkJobs::FinishedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BulkJobs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BulkJobs {
    Table,
    Id,
    Kind,
    Status,
    DryRun,
    RequestedBy,
    Total,
    Done,
    Changed,
    Unchanged,
    Refused,
    Results,
    Error,
    CreatedAt,
    FinishedAt,
}
