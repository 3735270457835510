use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_organisations::Organisations;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(pk_uuid(Invitations::Id))
                    .col(string_uniq(Invitations::ClerkInvitationId))
                    .col(string(Invitations::Email))
                    .col(string_len(Invitations::Role, 16))
                    .col(uuid_null(Invitations::OrganisationId))
                    .col(string_len(Invitations::Status, 16))
                    .col(uuid_null(Invitations::InvitedBy))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone(Invitations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_organisation")
                            .from(Invitations::Table, Invitations::OrganisationId)
                            .to(Organisations::Table, Organisations::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        // Matching a new user to their pending invitation looks up by email and status.
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_email_status")
                    .table(Invitations::Table)
                    .col(Invitations::Email)
                    .col(Invitations::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_organisation")
                    .table(Invitations::Table)
                    .col(Invitations::OrganisationId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    ClerkInvitationId,
    Email,
    Role,
    OrganisationId,
    Status,
    InvitedBy,
    CreatedAt,
    UpdatedAt,
}
