//! Clerk's event envelope, read into a `ClerkEvent`. Only a verified body gets here.

use serde::Deserialize;
use serde_json::Value;

use crate::clerk::model::ClerkUser;
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
            parse(br#"{"type":"session.created","data":{"id":"sess_1"}}"#).expect("an event");
        assert_eq!(kind, "session.created");
        assert!(matches!(event, ClerkEvent::Ignored { .. }));
        assert!(parse(b"{").is_err());
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
