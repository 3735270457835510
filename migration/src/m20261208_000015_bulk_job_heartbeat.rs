use sea_orm_migration::{prelude::*, schema::*};

/// A bulk job's last sign of life. An import waits out Clerk's invitation limit (25 calls an
/// hour), so a healthy job can run for hours: it is abandoned when it stops writing this, not
/// when it has run long.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BulkJobs::Table)
                    .add_column(timestamp_with_time_zone_null(BulkJobs::HeartbeatAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BulkJobs::Table)
                    .drop_column(BulkJobs::HeartbeatAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum BulkJobs {
    Table,
    HeartbeatAt,
}
