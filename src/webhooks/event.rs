//! Clerk's event envelope, read into a `ClerkEvent`. Only a verified body gets here.

use serde::Deserialize;
use serde_json::Value;

use crate::clerk::model::ClerkUser;
use crate::service::sign_ins::SessionEvent;
use crate::service::users::ClerkProfile;
use crate::service::webhooks::ClerkEvent;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: Value,
}

#[derive(Deserialize)]
struct DeletedObject {
    id: String,
}

/// Clerk's session object, as its `session.*` events carry it.
#[derive(Deserialize)]
struct Session {
    id: String,
    user_id: String,
    #[serde(default)]
    status: String,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    last_active_at: Option<i64>,
    #[serde(default)]
    latest_activity: Option<SessionActivity>,
}

#[derive(Deserialize, Default)]
struct SessionActivity {
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    browser_name: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// Clerk's ids are short; a longer one is not Clerk's.
const LONGEST_CLERK_ID: usize = 64;

fn session_event(kind: &str, data: Value) -> Result<SessionEvent, String> {
    let session: Session = serde_json::from_value(data)
        .map_err(|err| format!("`data` of {kind} is not a Clerk session: {err}"))?;
    for (field, id) in [("data.id", &session.id), ("data.user_id", &session.user_id)] {
        if id.trim().is_empty() || id.len() > LONGEST_CLERK_ID {
            return Err(format!(
                "`{field}` of {kind} must be 1 to {LONGEST_CLERK_ID} characters"
            ));
        }
    }
    let time = |field: &str, millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .filter(|_| millis > 0)
            .ok_or_else(|| format!("`data.{field}` of {kind} is not a time in milliseconds"))
    };
    let started_at = time("created_at", session.created_at)?;
    time("updated_at", session.updated_at)?;
    let last_active_at = match session.last_active_at {
        Some(millis) => time("last_active_at", millis)?,
        None => started_at,
    };
    let activity = session.latest_activity.unwrap_or_default();
    Ok(SessionEvent {
        session_id: session.id,
        clerk_user_id: session.user_id,
        status: session.status,
        ends: kind != "session.created",
        started_at,
        last_active_at,
        updated_at_ms: session.updated_at,
        device_type: activity.device_type,
        browser: activity.browser_name,
        country: activity.country,
    })
}

/// The event's type and what it asks for; `Err` with a message for a body that is not a
/// Clerk event.
pub(super) fn parse(body: &[u8]) -> Result<(String, ClerkEvent), String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|err| format!("the body is not a Clerk event: {err}"))?;
    if envelope.kind.trim().is_empty() {
        return Err("the body is not a Clerk event: its `type` is empty".to_owned());
    }
    let event = match envelope.kind.as_str() {
        "user.created" | "user.updated" => {
            let user: ClerkUser = serde_json::from_value(envelope.data)
                .map_err(|err| format!("`data` of {} is not a Clerk user: {err}", envelope.kind))?;
            if user.id.trim().is_empty() {
                return Err(format!("`data.id` of {} is empty", envelope.kind));
            }
            match ClerkProfile::of(&user) {
                Some(profile) => ClerkEvent::UserUpserted(profile),
                None => ClerkEvent::Ignored {
                    reason: format!("Clerk user {} has no email address", user.id),
                },
            }
        }
        "user.deleted" => {
            let deleted: DeletedObject = serde_json::from_value(envelope.data)
                .map_err(|err| format!("`data` of user.deleted has no user id: {err}"))?;
            if deleted.id.trim().is_empty() {
                return Err("`data.id` of user.deleted is empty".to_owned());
            }
            ClerkEvent::UserDeleted {
                clerk_id: deleted.id,
            }
        }
        "session.created" | "session.ended" | "session.removed" | "session.revoked" => {
            ClerkEvent::Session(session_event(&envelope.kind, envelope.data)?)
        }
        other => ClerkEvent::Ignored {
            reason: format!("userhub does not act on {other} events"),
        },
    };
    Ok((envelope.kind, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_ignored_and_broken_bodies_refused() {
        let (kind, event) =
            parse(br#"{"type":"session.pending","data":{"id":"sess_1"}}"#).expect("an event");
        assert_eq!(kind, "session.pending");
        assert!(matches!(event, ClerkEvent::Ignored { .. }));
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"type":"session.created","data":{"id":"sess_1"}}"#).is_err());
        assert!(parse(br#"{"type":"user.deleted","data":{}}"#).is_err());
        assert!(parse(br#"{"type":"user.updated","data":{"id":5}}"#).is_err());
        let (_, deleted) = parse(
            br#"{"type":"user.deleted","data":{"object":"user","id":"user_1","deleted":true}}"#,
        )
        .expect("an event");
        assert_eq!(
            deleted,
            ClerkEvent::UserDeleted {
                clerk_id: "user_1".to_owned()
            }
        );
    }
}
