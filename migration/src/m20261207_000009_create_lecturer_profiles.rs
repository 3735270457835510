use sea_orm_migration::{prelude::*, schema::*};

/// What userhub, not Clerk, knows of a person's employment: Clerk's metadata is capped at 8 KB
/// and travels in every session token, so contract data stays here. One row per user at most;
/// a user without one has no profile yet. `access_until` ends the person's access (their
/// contract's end): a scheduled job suspends them in Clerk then.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LecturerProfiles::Table)
                    .col(uuid(LecturerProfiles::UserId).primary_key())
                    .col(string_len_null(LecturerProfiles::StaffId, 64))
                    .col(string_len_null(LecturerProfiles::JobTitle, 200))
                    .col(string_len_null(LecturerProfiles::Department, 200))
                    .col(double_null(LecturerProfiles::ContractFte))
                    .col(date_null(LecturerProfiles::ContractStart))
                    .col(date_null(LecturerProfiles::ContractEnd))
                    .col(double_null(LecturerProfiles::WorkloadTargetHours))
                    .col(timestamp_with_time_zone_null(LecturerProfiles::AccessUntil))
                    .col(timestamp_with_time_zone(LecturerProfiles::CreatedAt))
                    .col(timestamp_with_time_zone(LecturerProfiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lecturer_profiles_user")
                            .from(LecturerProfiles::Table, LecturerProfiles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        // The scheduled job looks for the access that has ended.
        manager
            .create_index(
                Index::create()
                    .name("idx_lecturer_profiles_access_until")
                    .table(LecturerProfiles::Table)
                    .col(LecturerProfiles::AccessUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LecturerProfiles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LecturerProfiles {
    Table,
    UserId,
    StaffId,
    JobTitle,
    Department,
    ContractFte,
    ContractStart,
    ContractEnd,
    WorkloadTargetHours,
    AccessUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
