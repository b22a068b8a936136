//! `GET /api/v1/stream`: live updates as server-sent events.
//!
//! Events: `alert` (a newly stored alert, as the read API shows it),
//! `status` (`{"id", "status"}` after a triage), `incident` (an incident
//! made, joined by new alerts or triaged, as `GET /api/v1/incidents` lists
//! it), `sensor`
//! (`{"sensor_id", "stale": true}` when a sensor goes silent) and `lagged` (the client was
//! too slow and missed this many messages; it should reload).

use crate::access::Reader;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Subscribe to live updates.
pub async fn stream(
    State(st): State<Arc<AppState>>,
    _: Reader,
) -> Result<Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let rx = st
        .subscribe()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let events = BroadcastStream::new(rx).map(|m| {
        Ok(match m {
            Ok(msg) => Event::default().event(msg.kind).data(&*msg.data),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Event::default().event("lagged").data(n.to_string())
            }
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
