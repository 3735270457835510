//! The closed vocabularies stored as strings: roles, invitation statuses, sync run statuses.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a user may do. Stored as Clerk spells it in `public_metadata.role`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "org_admin")]
    OrgAdmin,
    #[sea_orm(string_value = "lecturer")]
    Lecturer,
    #[sea_orm(string_value = "member")]
    Member,
}

impl Role {
    /// The spelling used in the database and in Clerk metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::OrgAdmin => "org_admin",
            Role::Lecturer => "lecturer",
            Role::Member => "member",
        }
    }

    /// Reads a role as Clerk metadata may spell it; `None` for anything unknown.
    pub fn parse(value: &str) -> Option<Role> {
        match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "admin" => Some(Role::Admin),
            "org_admin" | "orgadmin" | "organisation_admin" | "organization_admin" => {
                Some(Role::OrgAdmin)
            }
            "lecturer" => Some(Role::Lecturer),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }
}

/// Where an invitation stands in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "accepted")]
    Accepted,
    #[sea_orm(string_value = "revoked")]
    Revoked,
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// Where a sync run stands. At most one is `Running` at a time (a unique partial index).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SyncRunStatus {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl SyncRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRunStatus::Running => "running",
            SyncRunStatus::Succeeded => "succeeded",
            SyncRunStatus::Failed => "failed",
        }
    }
}

/// What a workload activity is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    #[sea_orm(string_value = "teaching")]
    Teaching,
    #[sea_orm(string_value = "assessment")]
    Assessment,
    #[sea_orm(string_value = "supervision")]
    Supervision,
    #[sea_orm(string_value = "administration")]
    Administration,
    #[sea_orm(string_value = "research")]
    Research,
    #[sea_orm(string_value = "other")]
    Other,
}
