//! Webhook deliveries applied by group commit (issue 18). Deliveries that arrive while others
//! are being applied wait in a queue; each worker takes what has queued (up to a batch) and
//! applies it in one transaction (`webhooks::apply`), so concurrent deliveries share its
//! `BEGIN`, `COMMIT`, reads, inserts and `NOTIFY`. A delivery is answered only once the
//! transaction holding its own change has committed, as when it is applied alone.
//!
//! What cannot go in a batch is applied alone, after it, as `webhooks::handle` does:
//!
//! - a second delivery about the same user, or with the same svix id (it must see the first's
//!   outcome, as it would one after the other);
//! - a delivery about a user this process is writing now (a mutation's echo waits for it);
//! - every delivery of a batch that failed: one bad delivery fails alone, as before.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};

use super::{Delivery, Outcome, apply_retrying, handle};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::service::Services;

/// Transactions applying deliveries at once. A batch's time is mostly round trips, so a few
/// keep PostgreSQL busy while each waits; more make batches smaller. W2 on 2 cores
/// (2026-12-07, 20,000 deliveries from 32 clients): 2 workers 2,500–2,900 a second (8 a
/// transaction), 4 workers 3,300–3,400 (4), 8 workers 2,700–2,900 (2.6).
const WORKERS: usize = 4;
/// The most deliveries in one transaction.
const MOST_PER_BATCH: usize = 64;
/// Deliveries beyond this many waiting wait to be queued (the request's own time limit
/// applies).
const QUEUE: usize = 1024;

/// The queue deliveries are applied from. Cheap to clone; the workers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
}

struct Queued {
    delivery: Delivery,
    answer: oneshot::Sender<Result<Outcome, AppError>>,
}

impl Ingest {
    /// Starts the workers, on the current runtime.
    pub fn start(services: Services) -> Ingest {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            tokio::spawn(work(services.clone(), receiver.clone()));
        }
        Ingest {
            queue,
            metrics: services.metrics.clone(),
        }
    }

    /// Applies a delivery once, however often it arrives; answers once it is committed.
    pub async fn apply(&self, delivery: Delivery) -> Result<Outcome, AppError> {
        let _in_flight = InFlight::count(&self.metrics);
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued { delivery, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// One delivery in `userhub_webhooks_in_flight`, for as long as its request waits (a client
/// that goes away stops waiting, whatever becomes of its delivery).
struct InFlight<'a>(&'a Metrics);

impl InFlight<'_> {
    fn count(metrics: &Metrics) -> InFlight<'_> {
        metrics.webhooks_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.webhooks_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn stopped() -> AppError {
    AppError::Internal(anyhow::anyhow!("the webhook workers have stopped"))
}

async fn work(services: Services, receiver: Arc<Mutex<mpsc::Receiver<Queued>>>) {
    let mut batch = Vec::with_capacity(MOST_PER_BATCH);
    loop {
        let received = receiver
            .lock()
            .await
            .recv_many(&mut batch, MOST_PER_BATCH)
            .await;
        if received == 0 {
            return;
        }
        // A panic is a bug; it fails its batch's requests (500, so Clerk retries them), not
        // the worker, which would leave every later delivery waiting.
        let applying = AssertUnwindSafe(apply_batch(&services, std::mem::take(&mut batch)));
        if applying.catch_unwind().await.is_err() {
            tracing::error!("applying a batch of webhook deliveries panicked");
        }
    }
}

async fn apply_batch(services: &Services, queued: Vec<Queued>) {
    let mut together = Vec::with_capacity(queued.len());
    let mut turns: Vec<OwnedMutexGuard<()>> = Vec::with_capacity(queued.len());
    let mut alone = Vec::new();
    let (mut svix_ids, mut users) = (HashSet::new(), HashSet::new());
    for item in queued {
        let svix_id_is_new = svix_ids.insert(item.delivery.svix_id.clone());
        let turn = match item.delivery.event.clerk_id() {
            _ if !svix_id_is_new => None,
            None => Some(None),
            Some(clerk_id) if users.insert(clerk_id.to_owned()) => {
                services.locks.try_local(clerk_id).map(Some)
            }
            Some(_) => None,
        };
        match turn {
            Some(turn) => {
                turns.extend(turn);
                together.push(item);
            }
            None => alone.push(item),
        }
    }
    if !together.is_empty() {
        let (deliveries, answers): (Vec<Delivery>, Vec<_>) = together
            .into_iter()
            .map(|item| (item.delivery, item.answer))
            .unzip();
        let applied = apply_retrying(services, &deliveries).await;
        services
            .metrics
            .webhook_batches
            .fetch_add(1, Ordering::Relaxed);
        // Released before anything is applied alone: those wait for these turns.
        drop(turns);
        match applied {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    // The client may have gone; its delivery is committed all the same.
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(error) if deliveries.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(error));
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::error::error_chain(&error), deliveries = deliveries.len(), "a batch of webhook deliveries failed; applying each alone");
                alone.extend(
                    deliveries
                        .into_iter()
                        .zip(answers)
                        .map(|(delivery, answer)| Queued { delivery, answer }),
                );
            }
        }
    }
    for Queued { delivery, answer } in alone {
        let services = services.clone();
        tokio::spawn(async move {
            let _ = answer.send(handle(&services, &delivery).await);
        });
    }
}
