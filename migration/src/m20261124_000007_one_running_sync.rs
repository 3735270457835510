use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// At most one sync runs at a time, across every replica: a second `running` row is a unique
/// violation. A partial unique index says so on SQLite and PostgreSQL alike.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_sync_runs_one_running ON sync_runs (status) WHERE status = 'running'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_sync_runs_one_running")
            .await?;
        Ok(())
    }
}
