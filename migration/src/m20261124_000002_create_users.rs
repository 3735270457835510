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
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::ClerkId))
                    .col(string(Users::Email))
                    .col(string_null(Users::FirstName))
                    .col(string_null(Users::LastName))
                    .col(string_null(Users::ImageUrl))
                    .col(string_len(Users::Role, 16))
                    .col(uuid_null(Users::OrganisationId))
                    .col(boolean(Users::IsActive))
                    .col(boolean(Users::Banned))
                    .col(timestamp_with_time_zone_null(Users::LastSignInAt))
                    .col(big_integer(Users::ClerkUpdatedAt))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Users::DeactivatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_organisation")
                            .from(Users::Table, Users::OrganisationId)
                            .to(Organisations::Table, Organisations::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        // Every keyset order ends in `id`, so each index does too.
        for (name, columns) in [
            ("idx_users_email", vec![Users::Email, Users::Id]),
            (
                "idx_users_organisation",
                vec![Users::OrganisationId, Users::Id],
            ),
            ("idx_users_role", vec![Users::Role, Users::Id]),
            ("idx_users_active", vec![Users::IsActive, Users::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Users::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    ClerkId,
    Email,
    FirstName,
    LastName,
    ImageUrl,
    Role,
    OrganisationId,
    IsActive,
    Banned,
    LastSignInAt,
    ClerkUpdatedAt,
    CreatedAt,
    UpdatedAt,
    DeactivatedAt,
}
