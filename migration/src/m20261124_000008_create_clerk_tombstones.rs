use sea_orm_migration::{prelude::*, schema::*};

/// Clerk ids that Clerk has deleted. Clerk never reuses an id, so an event about one of them
/// that arrives after its `user.deleted` (retried, reordered) is stale by definition, even when
/// the deletion reached us before the user's creation did.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClerkTombstones::Table)
                    .col(string(ClerkTombstones::ClerkId).primary_key())
                    .col(timestamp_with_time_zone(ClerkTombstones::DeletedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClerkTombstones::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ClerkTombstones {
    Table,
    ClerkId,
    DeletedAt,
}
