//! Who is asking and what they may do.
//!
//! Authentication is one middleware on every protected route
//! ([`require_auth`]): a bearer token or a session cookie becomes a
//! [`Principal`] in the request's extensions, and a request without one is
//! refused (API clients get 401, browsers the sign-in page). Authorisation
//! is in the handlers' signatures: a handler that takes a [`Reader`],
//! [`Triager`] or [`Ingester`] runs only for a principal allowed to read,
//! triage or submit events; anyone else gets 403.

use crate::auth::{self, Need, Principal};
use crate::error::ApiError;
use crate::state::{AppState, now_micros};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// The principal of an authenticated request, if `need` is allowed to it.
fn authorise(parts: &Parts, need: Need) -> Result<Principal, ApiError> {
    let p = parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "authentication required"))?;
    if p.allows(need) {
        Ok(p)
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not {}",
            p.actor(),
            match need {
                Need::Ingest => "submit events",
                Need::Read => "read",
                Need::Triage => "triage alerts",
            }
        )))
    }
}

/// Defines an extractor that holds the request's principal once it is
/// known to be allowed `$need`.
macro_rules! permission {
    ($(#[$doc:meta])* $name:ident, $need:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(pub Principal);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
                authorise(parts, $need).map($name)
            }
        }
    };
}

permission!(
    /// A principal that may read alerts, accounts, sensors, the audit log,
    /// the live stream and metrics.
    Reader,
    Need::Read
);
permission!(
    /// A principal that may set an alert's status.
    Triager,
    Need::Triage
);
permission!(
    /// A principal that may submit events.
    Ingester,
    Need::Ingest
);

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ww_session";

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How stale a session's last-use time may get before it is rewritten
/// (microseconds); the idle timeout is thus exact to within a minute.
const TOUCH_EVERY: i64 = 60_000_000;

/// Who sent this request: a bearer token, or a session cookie.
/// `Err` when credentials were sent but are not valid.
async fn identify(
    state: &Arc<AppState>,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "malformed Authorization header")
            })?;
        let hash = auth::hash_secret(token);
        let now = now_micros();
        return match state.db(move |s| s.token_lookup(&hash, now)).await? {
            Some(g) => Ok(Some(Principal::Token {
                id: g.id,
                scope: g.scope,
                sensors: g.sensors.map(Into::into),
            })),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown, revoked or expired token",
            )),
        };
    }
    if let Some(secret) = cookie(headers, SESSION_COOKIE) {
        let hash = auth::hash_secret(secret);
        let h = hash.clone();
        let now = now_micros();
        if let Some(sess) = state.db(move |s| s.session_lookup(&h, now)).await? {
            let idle = i64::from(state.cfg.session_idle_minutes) * 60_000_000;
            if idle > 0 && now - sess.last_seen > idle {
                let h = hash.clone();
                state.db(move |s| s.session_delete(&h)).await?;
                return Ok(None);
            }
            // Record use at most once a minute (a write per request would
            // contend with ingest for nothing).
            if now - sess.last_seen > TOUCH_EVERY {
                let h = hash.clone();
                state.db(move |s| s.session_touch(&h, now)).await?;
            }
            return Ok(Some(Principal::User {
                name: sess.user,
                csrf: sess.csrf,
                session_hash: hash,
            }));
        }
    }
    Ok(None)
}

/// Deny by default: every route behind this layer needs a principal.
/// API clients get 401; browsers are sent to the sign-in page.
pub(crate) async fn require_auth(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    match identify(&state, req.headers()).await {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(None) => unauthenticated(req.uri().path()),
        Err(e) => {
            let mut r = e.into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

fn unauthenticated(path: &str) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "authentication required").into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    } else {
        Redirect::to("/login").into_response()
    }
}
