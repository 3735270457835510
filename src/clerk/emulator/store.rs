//! The emulator's users, as Clerk's JSON, in creation order.

use axum::http::StatusCode;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::{NewUser, random_id};

#[derive(Default)]
pub(super) struct Store {
    users: IndexMap<String, Value>,
    /// Lower-cased email addresses of `users`, so a new user's is checked in O(1).
    emails: std::collections::HashSet<String>,
    invitations: IndexMap<String, Value>,
    /// Invitation emails Clerk would have sent (`notify: true`), as (address, invitation id).
    sent_emails: Vec<(String, String)>,
    /// Webhook events of changes not yet handed to delivery: (type, data).
    events: Vec<(&'static str, Value)>,
    last_timestamp: i64,
}

/// Why the emulator said no, as Clerk would say it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn not_found() -> Refusal {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Resource not found",
        )
    }
}

/// `GET /users` parameters.
#[derive(Debug, Clone, Default)]
pub(super) struct ListFilter {
    pub emails: Vec<String>,
    pub user_ids: Vec<String>,
    pub query: Option<String>,
    pub limit: usize,
    pub offset: usize,
    pub newest_first: bool,
    pub starting_after: Option<String>,
}

impl Store {
    /// Unix milliseconds, strictly increasing, so creation order and timestamps agree.
    fn tick(&mut self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        self.last_timestamp = now.max(self.last_timestamp + 1);
        self.last_timestamp
    }

    pub(super) fn len(&self) -> usize {
        self.users.len()
    }

    pub(super) fn all(&self) -> Vec<Value> {
        self.users.values().cloned().collect()
    }

    pub(super) fn get(&self, id: &str) -> Option<Value> {
        self.users.get(id).cloned()
    }

    fn email_taken(&self, email: &str) -> bool {
        self.emails.contains(&email.to_lowercase())
    }

    pub(super) fn create(&mut self, new: NewUser) -> Result<Value, Refusal> {
        let id = format!("user_{}", random_id(27));
        let user = self.insert_user(&id, new)?;
        self.events.push(("user.created", user.clone()));
        Ok(user)
    }

    /// Creates a user under a given id, as if it had always been there: no webhook.
    pub(super) fn restore(&mut self, id: &str, new: NewUser) -> Result<Value, Refusal> {
        self.insert_user(id, new)
    }

    /// The webhook events of the changes made since the last call.
    pub(super) fn take_events(&mut self) -> Vec<(&'static str, Value)> {
        std::mem::take(&mut self.events)
    }

    fn insert_user(&mut self, id: &str, new: NewUser) -> Result<Value, Refusal> {
        if self.users.contains_key(id) {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_identifier_exists",
                "A user with this id already exists.",
            ));
        }
        let email = new.email.trim().to_owned();
        if !looks_like_email(&email) {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_format_invalid",
                "email_address must be a valid email address.",
            ));
        }
        if self.email_taken(&email) {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_identifier_exists",
                "That email address is taken. Please try another.",
            ));
        }
        let now = self.tick();
        let email_id = format!("idn_{}", random_id(27));
        let metadata = if new.public_metadata.is_object() {
            new.public_metadata
        } else {
            json!({})
        };
        let user = json!({
            "id": id,
            "object": "user",
            "external_id": null,
            "primary_email_address_id": email_id,
            "primary_phone_number_id": null,
            "primary_web3_wallet_id": null,
            "username": null,
            "first_name": new.first_name,
            "last_name": new.last_name,
            "image_url": format!("https://img.clerk.com/emulated/{id}"),
            "has_image": false,
            "public_metadata": metadata,
            "private_metadata": {},
            "unsafe_metadata": {},
            "email_addresses": [{
                "id": email_id,
                "object": "email_address",
                "email_address": email,
                "reserved": false,
                "verification": { "object": "verification_admin", "status": "verified", "strategy": "admin", "attempts": null, "expire_at": null },
                "linked_to": [],
                "created_at": now,
                "updated_at": now,
            }],
            "phone_numbers": [],
            "web3_wallets": [],
            "passkeys": [],
            "password_enabled": false,
            "two_factor_enabled": false,
            "totp_enabled": false,
            "backup_code_enabled": false,
            "mfa_enabled_at": null,
            "mfa_disabled_at": null,
            "external_accounts": [],
            "saml_accounts": [],
            "enterprise_accounts": [],
            "last_sign_in_at": null,
            "banned": false,
            "locked": false,
            "lockout_expires_in_seconds": null,
            "verification_attempts_remaining": 100,
            "created_at": now,
            "updated_at": now,
            "delete_self_enabled": true,
            "create_organization_enabled": true,
            "last_active_at": null,
            "legal_accepted_at": null,
        });
        self.emails.insert(email.to_lowercase());
        self.users.insert(id.to_owned(), user.clone());
        Ok(user)
    }

    pub(super) fn list(&self, filter: &ListFilter) -> Result<Vec<Value>, Refusal> {
        let matching: Vec<&Value> = self.matching(filter).collect();
        let ordered: Vec<&Value> = if filter.newest_first {
            matching.into_iter().rev().collect()
        } else {
            matching
        };
        let start = match &filter.starting_after {
            Some(after) => {
                ordered
                    .iter()
                    .position(|user| user["id"] == after.as_str())
                    .ok_or_else(|| {
                        Refusal::new(
                            StatusCode::BAD_REQUEST,
                            "form_param_value_invalid",
                            "starting_after does not name a user",
                        )
                    })?
                    + 1
            }
            None => 0,
        };
        Ok(ordered
            .into_iter()
            .skip(start + filter.offset)
            .take(filter.limit)
            .cloned()
            .collect())
    }

    pub(super) fn count(&self, filter: &ListFilter) -> usize {
        self.matching(filter).count()
    }

    fn matching<'a>(&'a self, filter: &'a ListFilter) -> impl Iterator<Item = &'a Value> + 'a {
        let query = filter.query.as_ref().map(|q| q.to_lowercase());
        self.users.values().filter(move |user| {
            (filter.user_ids.is_empty()
                || filter.user_ids.iter().any(|id| user["id"] == id.as_str()))
                && (filter.emails.is_empty()
                    || emails_of(user)
                        .any(|e| filter.emails.iter().any(|f| f.eq_ignore_ascii_case(e))))
                && query.as_ref().is_none_or(|q| {
                    emails_of(user).any(|e| e.to_lowercase().contains(q))
                        || ["first_name", "last_name"].iter().any(|field| {
                            user[field]
                                .as_str()
                                .is_some_and(|name| name.to_lowercase().contains(q))
                        })
                })
        })
    }

    /// `PATCH /users/{id}`: names only. Since API version 2026-05-12 metadata is refused here.
    pub(super) fn update(&mut self, id: &str, body: &Value) -> Result<Value, Refusal> {
        if ["public_metadata", "private_metadata", "unsafe_metadata"]
            .iter()
            .any(|field| body.get(field).is_some())
        {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_unknown",
                "Metadata cannot be updated here: use PATCH /users/{user_id}/metadata.",
            ));
        }
        let now = self.tick();
        let user = self.users.get_mut(id).ok_or_else(Refusal::not_found)?;
        for field in ["first_name", "last_name"] {
            if let Some(value) = body.get(field) {
                user[field] = value.clone();
            }
        }
        user["updated_at"] = json!(now);
        let user = user.clone();
        self.events.push(("user.updated", user.clone()));
        Ok(user)
    }

    /// `PATCH /users/{id}/metadata`: a deep merge; `null` removes a key at any depth.
    pub(super) fn merge_metadata(&mut self, id: &str, body: &Value) -> Option<Value> {
        let now = self.tick();
        let user = self.users.get_mut(id)?;
        for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
            if let Some(patch) = body.get(field) {
                deep_merge(&mut user[field], patch);
            }
        }
        user["updated_at"] = json!(now);
        let user = user.clone();
        self.events.push(("user.updated", user.clone()));
        Some(user)
    }

    pub(super) fn set_banned(&mut self, id: &str, banned: bool) -> Option<Value> {
        let now = self.tick();
        let user = self.users.get_mut(id)?;
        user["banned"] = json!(banned);
        user["updated_at"] = json!(now);
        let user = user.clone();
        self.events.push(("user.updated", user.clone()));
        Some(user)
    }

    /// `POST /invitations`.
    pub(super) fn invite(&mut self, body: &Value) -> Result<Value, Refusal> {
        let email = self.check_invitation(body)?;
        Ok(self.insert_invitation(email, body))
    }

    /// `POST /invitations/bulk`: all or nothing, as Clerk's is. Each item is checked as a
    /// single invitation would be, and two items may not invite one address.
    pub(super) fn invite_many(&mut self, bodies: &[Value]) -> Result<Vec<Value>, Refusal> {
        let mut emails = Vec::with_capacity(bodies.len());
        for body in bodies {
            let email = self.check_invitation(body)?;
            if emails
                .iter()
                .any(|seen: &String| seen.eq_ignore_ascii_case(&email))
            {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "duplicate_record",
                    format!("{email} is invited twice in this request."),
                ));
            }
            emails.push(email);
        }
        Ok(emails
            .into_iter()
            .zip(bodies)
            .map(|(email, body)| self.insert_invitation(email, body))
            .collect())
    }

    /// An invitation's address, if Clerk would send it.
    fn check_invitation(&self, body: &Value) -> Result<String, Refusal> {
        let email = body["email_address"]
            .as_str()
            .unwrap_or("")
            .trim()
            .to_owned();
        if !looks_like_email(&email) {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_format_invalid",
                "email_address must be a valid email address.",
            ));
        }
        let ignore_existing = body["ignore_existing"].as_bool().unwrap_or(false);
        if !ignore_existing {
            if self.email_taken(&email) {
                return Err(Refusal::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "form_identifier_exists",
                    "That email address is taken. Please try another.",
                ));
            }
            let pending = self.invitations.values().any(|invitation| {
                invitation["status"] == "pending"
                    && invitation["email_address"]
                        .as_str()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&email))
            });
            if pending {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "duplicate_record",
                    "There are already pending invitations for the following email addresses.",
                ));
            }
        }
        Ok(email)
    }

    fn insert_invitation(&mut self, email: String, body: &Value) -> Value {
        let days = body["expires_in_days"].as_i64().unwrap_or(30).clamp(1, 365);
        let now = self.tick();
        let id = format!("inv_{}", random_id(27));
        let metadata = if body["public_metadata"].is_object() {
            body["public_metadata"].clone()
        } else {
            json!({})
        };
        let invitation = json!({
            "object": "invitation",
            "id": id,
            "email_address": email,
            "public_metadata": metadata,
            "revoked": false,
            "status": "pending",
            "url": format!("https://accounts.emulated.clerk/sign-up?__clerk_ticket={}", random_id(32)),
            "expires_at": now + days * 86_400_000,
            "created_at": now,
            "updated_at": now,
        });
        if body["notify"].as_bool().unwrap_or(true) {
            self.sent_emails.push((email, id.clone()));
        }
        self.invitations.insert(id, invitation.clone());
        invitation
    }

    /// `GET /invitations`, newest first.
    pub(super) fn invitations(
        &self,
        status: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Vec<Value> {
        self.invitations
            .values()
            .rev()
            .filter(|invitation| status.is_none_or(|status| invitation["status"] == status))
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    pub(super) fn invitation(&self, id: &str) -> Option<Value> {
        self.invitations.get(id).cloned()
    }

    /// `POST /invitations/{id}/revoke`: only a pending invitation can be revoked.
    pub(super) fn revoke(&mut self, id: &str) -> Result<Value, Refusal> {
        let now = self.tick();
        let invitation = self
            .invitations
            .get_mut(id)
            .ok_or_else(Refusal::not_found)?;
        if invitation["status"] != "pending" {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "revoke_invitation_not_pending",
                "Only pending invitations can be revoked.",
            ));
        }
        invitation["status"] = json!("revoked");
        invitation["revoked"] = json!(true);
        invitation["updated_at"] = json!(now);
        Ok(invitation.clone())
    }

    /// A person accepts an invitation: their user is created with its email and metadata.
    pub(super) fn accept(
        &mut self,
        id: &str,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> Result<Value, Refusal> {
        let invitation = self
            .invitations
            .get(id)
            .cloned()
            .ok_or_else(Refusal::not_found)?;
        if invitation["status"] != "pending" {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invitation_not_pending",
                "This invitation is no longer valid.",
            ));
        }
        let user = self.create(NewUser {
            email: invitation["email_address"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            first_name,
            last_name,
            public_metadata: invitation["public_metadata"].clone(),
        })?;
        let now = self.tick();
        if let Some(invitation) = self.invitations.get_mut(id) {
            invitation["status"] = json!("accepted");
            invitation["updated_at"] = json!(now);
        }
        Ok(user)
    }

    pub(super) fn sent_emails(&self) -> Vec<(String, String)> {
        self.sent_emails.clone()
    }

    pub(super) fn delete(&mut self, id: &str) -> Option<Value> {
        let user = self.users.shift_remove(id)?;
        for email in emails_of(&user) {
            self.emails.remove(&email.to_lowercase());
        }
        let deleted = json!({ "object": "user", "id": id, "deleted": true });
        self.events.push(("user.deleted", deleted.clone()));
        Some(deleted)
    }
}

fn emails_of(user: &Value) -> impl Iterator<Item = &str> {
    user["email_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|email| email["email_address"].as_str())
}

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub(super) fn deep_merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => merge_objects(target, patch),
        _ => *target = patch.clone(),
    }
}

fn merge_objects(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else if let (Some(existing), true) = (target.get_mut(key), value.is_object()) {
            if existing.is_object() {
                deep_merge(existing, value);
            } else {
                *existing = value.clone();
            }
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_merges_deeply_and_null_removes() {
        let mut metadata = json!({ "role": "member", "prefs": { "theme": "dark", "lang": "en" } });
        deep_merge(
            &mut metadata,
            &json!({ "role": "admin", "prefs": { "theme": null, "tz": "UTC" }, "new": 1 }),
        );
        assert_eq!(
            metadata,
            json!({ "role": "admin", "prefs": { "lang": "en", "tz": "UTC" }, "new": 1 })
        );
    }
}
