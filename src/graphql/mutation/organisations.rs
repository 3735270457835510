use async_graphql::{Context, ID, InputObject, Object, Result};

use super::origin;
use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::Organisation;
use crate::service::organisations::{self, NewOrganisation, OrganisationUpdate};
use crate::service::parse_id;

#[derive(Default)]
pub struct OrganisationMutation;

#[derive(Debug, Clone, InputObject)]
pub struct CreateOrganisationInput {
    pub name: String,
    /// Lower-case letters, digits and single hyphens; derived from the name when left out.
    pub slug: Option<String>,
    /// The hours of a full-time academic year here (1 to 8,760; 1,650 when left out).
    pub standard_hours: Option<i32>,
}

/// Changes to an organisation; a field left out is left as it is.
#[derive(Debug, Clone, Default, InputObject)]
pub struct UpdateOrganisationInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// The hours of a full-time academic year here (1 to 8,760): workload targets follow.
    pub standard_hours: Option<i32>,
}

#[Object]
impl OrganisationMutation {
    /// Admins only.
    async fn create_organisation(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganisationInput,
    ) -> Result<Organisation> {
        let actor = caller(ctx).actor()?;
        let created = organisations::create(
            services(ctx),
            actor.into(),
            &origin(ctx, actor),
            NewOrganisation {
                name: input.name,
                slug: input.slug,
                standard_hours: input.standard_hours,
            },
        )
        .await?;
        Ok(Organisation::one(created))
    }

    /// Admins only.
    async fn update_organisation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateOrganisationInput,
    ) -> Result<Organisation> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let updated = organisations::update(
            services(ctx),
            actor.into(),
            &origin(ctx, actor),
            id,
            OrganisationUpdate {
                name: input.name,
                slug: input.slug,
                standard_hours: input.standard_hours,
            },
        )
        .await?;
        Ok(Organisation::one(updated))
    }

    /// Admins only. Refused (`CONFLICT`) while the organisation has active users: move or
    /// remove them first.
    async fn archive_organisation(&self, ctx: &Context<'_>, id: ID) -> Result<Organisation> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let archived =
            organisations::archive(services(ctx), actor.into(), &origin(ctx, actor), id).await?;
        Ok(Organisation::one(archived))
    }
}
