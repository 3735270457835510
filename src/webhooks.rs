//! `POST /api/webhooks/clerk`: Clerk's deliveries, verified before anything else is done with
//! them, then handed to `service::webhooks`.
//!
//! Answers, each with a JSON body:
//! - 401: a missing or bad signature, or a timestamp more than 5 minutes off (either way);
//! - 400: a verified body that is not a Clerk event;
//! - 413: a body over `USERHUB_WEBHOOK_MAX_BYTES`;
//! - 200: processed, or deliberately ignored (a duplicate, a stale or unknown event);
//! - 500: the database failed, so Clerk retries; 503: no webhook secret configured.
//!
//! Nothing is written for a refused delivery.

mod event;
#[cfg(test)]
mod properties;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use svix::webhooks::{Webhook, WebhookError};

use crate::config::Secret;
use crate::error::{AppError, json_error};
use crate::service::Services;
use crate::service::webhooks::{self, Delivery};

/// What the webhook route needs; the server's state hands it over (`axum::extract::FromRef`).
#[derive(Clone)]
pub struct WebhookState {
    pub services: Services,
    /// `None` when no webhook secret is configured: deliveries are refused.
    pub verifier: Option<Arc<Verifier>>,
    pub ingest: webhooks::Ingest,
}

/// Checks svix signatures against the endpoint's secret.
pub struct Verifier {
    webhook: Webhook,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(***)")
    }
}

impl Verifier {
    pub fn new(secret: &Secret) -> Result<Verifier, WebhookError> {
        Ok(Verifier {
            webhook: Webhook::new(secret.expose())?,
        })
    }

    /// Accepts the body when one of the `v1` signatures (several during a secret rotation)
    /// matches `{id}.{timestamp}.{body}`, in constant time, and the timestamp is within 5
    /// minutes of now. Headers may be spelled `svix-*` or `webhook-*`.
    pub fn verify(&self, body: &[u8], headers: &HeaderMap) -> Result<(), WebhookError> {
        self.webhook.verify(body, headers)
    }
}

/// A fresh `whsec_` secret, for local mode's emulator.
pub fn random_secret() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut key = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The delivery's svix id, from whichever spelling carried it (verification checked it).
fn delivery_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("svix-id")
        .or_else(|| headers.get("webhook-id"))
        .and_then(|value| value.to_str().ok())
}

/// Why a delivery is refused before it reaches the service: each is a 4xx (or a 503 when this
/// server cannot verify anything) with a JSON body, and each counts in
/// `userhub_webhooks_total{outcome="refused"}`.
#[derive(Debug)]
enum Refusal {
    NotConfigured,
    Body(BytesRejection),
    Signature(WebhookError),
    MissingId,
    MalformedEvent(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotConfigured => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "WEBHOOKS_NOT_CONFIGURED",
                "this server has no CLERK_WEBHOOK_SECRET, so it cannot verify deliveries",
            ),
            Refusal::Body(rejection) => {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "PAYLOAD_TOO_LARGE"
                } else {
                    "MALFORMED_BODY"
                };
                json_error(status, code, rejection.body_text())
            }
            Refusal::Signature(error) => {
                let (status, code) = match error {
                    // Only a body that is not UTF-8 text; svix signs text.
                    WebhookError::InvalidPayload => (StatusCode::BAD_REQUEST, "MALFORMED_BODY"),
                    WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError => {
                        (StatusCode::UNAUTHORIZED, "STALE_TIMESTAMP")
                    }
                    WebhookError::MissingHeader(_) => {
                        (StatusCode::UNAUTHORIZED, "MISSING_SIGNATURE")
                    }
                    _ => (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE"),
                };
                json_error(status, code, format!("webhook refused: {error}"))
            }
            Refusal::MissingId => json_error(
                StatusCode::UNAUTHORIZED,
                "MISSING_SIGNATURE",
                "webhook refused: missing header id",
            ),
            Refusal::MalformedEvent(message) => {
                json_error(StatusCode::BAD_REQUEST, "MALFORMED_EVENT", message)
            }
        }
    }
}

/// The delivery a request carries, once its body is whole, its signature holds and its event
/// parses.
fn verified_delivery(
    verifier: Option<&Verifier>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Delivery, Refusal> {
    let verifier = verifier.ok_or(Refusal::NotConfigured)?;
    let body = body.map_err(Refusal::Body)?;
    verifier.verify(&body, headers).map_err(|error| {
        tracing::warn!(error = %error, "webhook refused");
        Refusal::Signature(error)
    })?;
    let svix_id = delivery_id(headers).ok_or(Refusal::MissingId)?;
    let (event_type, event) = event::parse(&body).map_err(Refusal::MalformedEvent)?;
    Ok(Delivery {
        svix_id: svix_id.to_owned(),
        event_type,
        event,
    })
}

pub async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = &state.services.metrics;
    let delivery = match verified_delivery(state.verifier.as_deref(), &headers, body) {
        Ok(delivery) => delivery,
        Err(refusal) => {
            metrics.webhooks_refused.fetch_add(1, Ordering::Relaxed);
            return refusal.into_response();
        }
    };
    let (svix_id, event_type) = (delivery.svix_id.clone(), delivery.event_type.clone());
    match state.ingest.apply(delivery).await {
        Ok(outcome) => {
            outcome.count(metrics);
            tracing::info!(svix_id = %svix_id, event_type = %event_type, outcome = outcome.as_str(), "webhook handled");
            Json(json!({ "status": outcome.as_str(), "svixId": svix_id })).into_response()
        }
        Err(error) => {
            metrics.webhooks_failed.fetch_add(1, Ordering::Relaxed);
            match &error {
                // Clerk retries a 5xx, which is what a database failure needs.
                AppError::Database(_) | AppError::Internal(_) | AppError::Unrecorded(_) => {
                    tracing::error!(svix_id = %svix_id, error = %crate::error::error_chain(&error), "webhook failed; Clerk will retry");
                    let reason = match &error {
                        AppError::Database(err) => crate::error::storage_trouble(err)
                            .map(|trouble| format!(" ({})", trouble.describe())),
                        _ => None,
                    };
                    json_error(
                        error.status(),
                        error.code(),
                        format!(
                            "the delivery could not be recorded{}; retry it",
                            reason.unwrap_or_default()
                        ),
                    )
                }
                _ => error.into_response(),
            }
        }
    }
}
