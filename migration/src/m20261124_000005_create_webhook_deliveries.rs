use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(string(WebhookDeliveries::SvixId).primary_key())
                    .col(string(WebhookDeliveries::EventType))
                    .col(timestamp_with_time_zone(WebhookDeliveries::ReceivedAt))
                    .col(string_len(WebhookDeliveries::Outcome, 16))
                    .to_owned(),
            )
            .await?;
        // Old deliveries are pruned by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_received_at")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    SvixId,
    EventType,
    ReceivedAt,
    Outcome,
}
