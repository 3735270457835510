use sea_orm_migration::{prelude::*, schema::*};

/// The change feed: every change published to `userChanged`, as it was published, so that a
/// subscriber who fell behind or reconnects resumes from its cursor (the row's UUIDv7 id)
/// instead of missing what happened meanwhile. Kept for a week (`service::change_feed`).
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserChanges::Table)
                    .col(uuid(UserChanges::Id).primary_key())
                    .col(uuid(UserChanges::UserId))
                    .col(uuid_null(UserChanges::OrganisationId))
                    .col(uuid_null(UserChanges::PreviousOrganisationId))
                    .col(text(UserChanges::Payload))
                    .col(timestamp_with_time_zone(UserChanges::OccurredAt))
                    .to_owned(),
            )
            .await?;
        // An organisation's feed, in order (the admins' is the primary key's order).
        manager
            .create_index(
                Index::create()
                    .name("idx_user_changes_organisation")
                    .table(UserChanges::Table)
                    .col(UserChanges::OrganisationId)
                    .col(UserChanges::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserChanges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserChanges {
    Table,
    Id,
    UserId,
    OrganisationId,
    PreviousOrganisationId,
    Payload,
    OccurredAt,
}
