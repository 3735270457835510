use sea_orm_migration::{prelude::*, schema::*};

/// Activity: each Clerk session as a sign-in (from `session.created`, closed by
/// `session.ended`, `.removed` or `.revoked`), and each user's last activity. A sign-in is
/// keyed by Clerk's session id and names its user by Clerk id, so one that arrives before the
/// user's own `user.created` is kept, not lost; its history goes when the user's row does not
/// (a removed user's sign-ins stay with their row).
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::LastActiveAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_last_active_at")
                    .table(Users::Table)
                    .col(Users::LastActiveAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SignIns::Table)
                    .col(string_len(SignIns::SessionId, 64).primary_key())
                    .col(string_len(SignIns::ClerkUserId, 64))
                    .col(timestamp_with_time_zone(SignIns::StartedAt))
                    .col(timestamp_with_time_zone(SignIns::LastActiveAt))
                    .col(timestamp_with_time_zone_null(SignIns::EndedAt))
                    .col(string_len(SignIns::Status, 16))
                    .col(string_len_null(SignIns::DeviceType, 32))
                    .col(string_len_null(SignIns::Browser, 64))
                    .col(string_len_null(SignIns::Country, 8))
                    .col(big_integer(SignIns::ClerkUpdatedAt))
                    .to_owned(),
            )
            .await?;
        // A user's history, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_sign_ins_user_started")
                    .table(SignIns::Table)
                    .col(SignIns::ClerkUserId)
                    .col(SignIns::StartedAt)
                    .to_owned(),
            )
            .await?;
        // Sign-ins by week, across an organisation.
        manager
            .create_index(
                Index::create()
                    .name("idx_sign_ins_started")
                    .table(SignIns::Table)
                    .col(SignIns::StartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignIns::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_last_active_at")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::LastActiveAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum SignIns {
    Table,
    SessionId,
    ClerkUserId,
    StartedAt,
    LastActiveAt,
    EndedAt,
    Status,
    DeviceType,
    Browser,
    Country,
    ClerkUpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    LastActiveAt,
}
