use sea_orm_migration::{prelude::*, schema::*};

/// Workload: the teaching and other duties allocated to people, each with its hours, and the
/// hours a full-time post carries in each organisation (a person's target is their FTE times
/// these, unless their profile sets one). An allocation is deleted with its person.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// A full-time academic year in UK universities, unless the organisation sets its own.
const DEFAULT_STANDARD_HOURS: i32 = 1_650;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organisations::Table)
                    .add_column(
                        integer(Organisations::StandardHours).default(DEFAULT_STANDARD_HOURS),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(uuid(Activities::Id).primary_key())
                    .col(uuid(Activities::UserId))
                    .col(string_len(Activities::AcademicYear, 7))
                    .col(string_len_null(Activities::Term, 32))
                    .col(string_len(Activities::Kind, 16))
                    .col(string_len_null(Activities::ModuleCode, 32))
                    .col(string_len(Activities::Name, 200))
                    .col(double(Activities::Hours))
                    .col(timestamp_with_time_zone(Activities::CreatedAt))
                    .col(timestamp_with_time_zone(Activities::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_user")
                            .from(Activities::Table, Activities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        // A person's year is read and summed together.
        manager
            .create_index(
                Index::create()
                    .name("idx_activities_user_year")
                    .table(Activities::Table)
                    .col(Activities::UserId)
                    .col(Activities::AcademicYear)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Activities::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organisations::Table)
                    .drop_column(Organisations::StandardHours)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Activities {
    Table,
    Id,
    UserId,
    AcademicYear,
    Term,
    Kind,
    ModuleCode,
    Name,
    Hours,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    StandardHours,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
