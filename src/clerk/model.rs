//! Clerk's wire types, read leniently: every field we do not need is optional or kept as
//! JSON, and enums are plain strings, so a field Clerk adds (a new verification strategy, say)
//! never breaks parsing. Timestamps are Unix milliseconds.

use chrono::{DateTime, TimeZone, Utc};
use entity::role::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClerkUser {
    pub id: String,
    #[serde(default)]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(default)]
    pub primary_email_address_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default = "empty_object")]
    pub public_metadata: Value,
    #[serde(default)]
    pub banned: bool,
    #[serde(default)]
    pub last_sign_in_at: Option<i64>,
    #[serde(default)]
    pub last_active_at: Option<i64>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
    /// Everything else Clerk sends, kept as it came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub id: Option<String>,
    pub email_address: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// The metadata keys userhub reads and writes, spelled as the original application does.
pub const ROLE_KEY: &str = "role";
pub const ORGANISATION_KEY: &str = "organisationId";
/// The metadata key that ties a Clerk invitation, and the user made from it, to its row in
/// userhub; unique per invitation, so it also tells whether an uncertain creation happened.
pub const INVITATION_KEY: &str = "userhubInvitationId";

impl ClerkUser {
    /// The primary email address, or the first one when none is marked primary.
    pub fn primary_email(&self) -> Option<&str> {
        let primary = self.primary_email_address_id.as_deref();
        self.email_addresses
            .iter()
            .find(|email| email.id.is_some() && email.id.as_deref() == primary)
            .or_else(|| self.email_addresses.first())
            .map(|email| email.email_address.as_str())
    }

    /// `public_metadata.role`, read as a role. Missing or unknown roles are `Member`; an unknown
    /// one is logged, since it usually means a typo in the Clerk dashboard.
    pub fn role(&self) -> Role {
        match self.public_metadata.get(ROLE_KEY).and_then(Value::as_str) {
            None => Role::Member,
            Some(text) => Role::parse(text).unwrap_or_else(|| {
                tracing::warn!(clerk_id = %self.id, role = text, "unknown role in Clerk metadata; treated as member");
                Role::Member
            }),
        }
    }

    /// `public_metadata.organisationId`, when it is a UUID.
    pub fn organisation_id(&self) -> Option<Uuid> {
        self.metadata_uuid(ORGANISATION_KEY)
    }

    /// The userhub invitation this user accepted: Clerk copies an invitation's public metadata
    /// to the user it makes, `userhubInvitationId` with it.
    pub fn invitation_id(&self) -> Option<Uuid> {
        self.metadata_uuid(INVITATION_KEY)
    }

    fn metadata_uuid(&self, key: &str) -> Option<Uuid> {
        self.public_metadata
            .get(key)
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text.trim()).ok())
    }
}

pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

/// An invitation (`POST /invitations` and friends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClerkInvitation {
    pub id: String,
    pub email_address: String,
    #[serde(default = "empty_object")]
    pub public_metadata: Value,
    /// `pending`, `accepted`, `revoked`, `expired`; kept as text, Clerk may add more.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Clerk's error body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClerkErrors {
    #[serde(default)]
    pub errors: Vec<ClerkError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clerk_trace_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClerkError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub long_message: String,
    #[serde(default)]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// One key of Clerk's JWKS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    pub kty: String,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_user_with_unknown_fields_and_a_new_verification_strategy_parses() {
        let user: ClerkUser = serde_json::from_value(json!({
            "id": "user_1",
            "object": "user",
            "primary_email_address_id": "idn_2",
            "email_addresses": [
                { "id": "idn_1", "email_address": "old@x.test", "verification": null },
                { "id": "idn_2", "email_address": "Ada@X.test",
                  "verification": { "status": "verified", "strategy": "from_quantum_link", "attempts": null } }
            ],
            "public_metadata": { "role": "Org-Admin", "organisationId": "0190b7a0-0000-7000-8000-000000000001" },
            "brand_new_field": { "nested": [1, 2, 3] },
            "updated_at": 1700000000123i64
        }))
        .expect("lenient parsing");
        assert_eq!(user.primary_email(), Some("Ada@X.test"));
        assert_eq!(user.role(), Role::OrgAdmin);
        assert!(user.organisation_id().is_some());
        assert_eq!(user.updated_at, 1_700_000_000_123);
        assert!(user.other.contains_key("brand_new_field"));
    }

    #[test]
    fn unknown_roles_and_malformed_organisations_fall_back_safely() {
        let user: ClerkUser = serde_json::from_value(json!({
            "id": "user_2",
            "email_addresses": [{ "email_address": "x@x.test" }],
            "public_metadata": { "role": "superuser", "organisationId": "not-a-uuid" }
        }))
        .expect("parses");
        assert_eq!(user.role(), Role::Member);
        assert_eq!(user.organisation_id(), None);
    }
}
