//! Signing in and out, and the checks every state-changing form passes
//! (same origin, the session's CSRF token).

use super::render::render;
use crate::access::SESSION_COOKIE;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::state::{AppState, now_micros};
use crate::store::AuditEntry;
use crate::throttle::Refusal;
use askama::Template;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

/// `GET /login`.
pub async fn login_page() -> Response {
    render(&LoginPage { error: None })
}

/// Sign-in form fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    /// The TOTP code or a recovery code (needed when the user is enrolled,
    /// or `require_mfa` is set).
    #[serde(default)]
    totp: String,
}

/// A state-changing request must come from our own pages: when the browser
/// says where it comes from (`Origin`), that must be this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .map(|(_, h)| h == host)
        .unwrap_or(false)
}

fn login_error(status: StatusCode, msg: &str) -> Response {
    let mut r = render(&LoginPage {
        error: Some(msg.to_string()),
    });
    *r.status_mut() = status;
    r
}

/// The answer to a sign-in that may not be tried now: 429 (throttled) or
/// 503 (no hashing slot), both with `Retry-After`.
fn refused(refusal: Refusal) -> Response {
    let (status, result, msg, wait) = match refusal {
        Refusal::Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "Too many attempts. Wait a while and try again.",
            wait.as_secs() + 1,
        ),
        Refusal::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many sign-ins at once. Try again in a moment.",
            1,
        ),
    };
    metrics::counter!(crate::exporter::LOGINS, "result" => result).increment(1);
    let mut r = login_error(status, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    r
}

/// `POST /login`: failed sign-ins are limited per client address, and back
/// off per name and address; password hashing is bounded (503 beyond). On
/// success sets an HttpOnly, SameSite=Strict session cookie.
pub async fn login_submit(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return login_error(StatusCode::FORBIDDEN, "Cross-site sign-in refused.");
    }
    let ip = peer.ip();
    if let Err(refusal) = st.login.check(ip, &f.username) {
        return refused(refusal);
    }
    let name = f.username.clone();
    let phc = match st.db(move |s| s.user_phc(&name)).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let slot = match st.login.hash_slot().await {
        Ok(slot) => slot,
        Err(refusal) => return refused(refusal),
    };
    let password = f.password;
    // The slot goes with the hash: it is released when hashing ends, even
    // if this request is abandoned first.
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        match phc {
            Some(phc) => auth::verify_password(&phc, &password),
            None => {
                // Same work as a real check, so response time does not say
                // whether the name exists.
                let _ = auth::verify_password(auth::dummy_phc(), &password);
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        st.login.failed(ip, &f.username);
        metrics::counter!(crate::exporter::LOGINS, "result" => "failed").increment(1);
        return login_error(StatusCode::UNAUTHORIZED, "Wrong name, password or code.");
    }
    match second_factor(&st, &f.username, &f.totp, ip).await {
        Ok(SecondFactor::Passed) => {}
        Ok(SecondFactor::NotEnrolled) => {
            metrics::counter!(crate::exporter::LOGINS, "result" => "no_mfa").increment(1);
            return login_error(
                StatusCode::FORBIDDEN,
                "A second factor is required: ask an admin to run `weightwatch user add NAME --totp`.",
            );
        }
        Ok(SecondFactor::Failed) => {
            st.login.failed(ip, &f.username);
            metrics::counter!(crate::exporter::LOGINS, "result" => "failed").increment(1);
            return login_error(StatusCode::UNAUTHORIZED, "Wrong name, password or code.");
        }
        Err(e) => return e.into_response(),
    }
    st.login.succeeded(ip, &f.username);
    metrics::counter!(crate::exporter::LOGINS, "result" => "ok").increment(1);
    let secret = auth::new_secret("");
    let csrf = auth::new_secret("");
    let hash = auth::hash_secret(&secret);
    let hours = i64::from(st.cfg.session_hours.max(1));
    let expires = now_micros() + hours * 3_600_000_000;
    let user = f.username.clone();
    let entry = AuditEntry {
        id: 0,
        ts: now_micros(),
        actor: format!("user:{}", f.username),
        action: "sign_in".into(),
        alert_id: None,
        incident_id: None,
        detail: format!("from {}", peer.ip()),
    };
    let stored = st
        .db(move |s| {
            s.session_insert(&hash, &user, &csrf, expires, now_micros())?;
            s.audit_append(&entry)
        })
        .await;
    if let Err(e) = stored {
        return e.into_response();
    }
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        hours * 3600,
        if st.cfg.secure_cookie { "; Secure" } else { "" }
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// What the second factor check concluded.
enum SecondFactor {
    /// A valid TOTP or unused recovery code, or none needed.
    Passed,
    /// MFA is required and the user has no TOTP.
    NotEnrolled,
    /// A code was needed and the one given is wrong or already used (or
    /// none was given).
    Failed,
}

/// Check the `totp` field for `user` (whose password was right): a TOTP
/// code of the current 30 s step (±1) later than the last step accepted
/// for them (which it then becomes), or one of their recovery codes, which
/// is then used up (audited); a used code from `peer` is refused and
/// audited.
async fn second_factor(
    st: &Arc<AppState>,
    user: &str,
    code: &str,
    peer: std::net::IpAddr,
) -> Result<SecondFactor, ApiError> {
    let name = user.to_string();
    let mfa = st.db(move |s| s.user_mfa(&name)).await?.unwrap_or_default();
    let Some(secret) = mfa.totp_secret else {
        return Ok(if st.cfg.require_mfa {
            SecondFactor::NotEnrolled
        } else {
            SecondFactor::Passed
        });
    };
    let now_secs = u64::try_from(now_micros() / 1_000_000).unwrap_or(0);
    if let Some(step) = crate::mfa::code_step(&secret, code, now_secs) {
        let (name, step) = (user.to_string(), i64::try_from(step).unwrap_or(i64::MAX));
        if st.db(move |s| s.user_use_totp_step(&name, step)).await? {
            return Ok(SecondFactor::Passed);
        }
        // The right code, already used (or older than one used): someone
        // may have seen it. Refused like a wrong code, and audited (the
        // password was right: the code may have been read over a shoulder).
        tracing::warn!(user, step, "a used TOTP code was refused");
        let entry = AuditEntry {
            id: 0,
            ts: now_micros(),
            actor: format!("user:{user}"),
            action: "totp_replay".into(),
            alert_id: None,
            incident_id: None,
            detail: format!(
                "refused a TOTP code already used (time step {step}) after a right password from {peer}"
            ),
        };
        st.db(move |s| s.audit_append(&entry)).await?;
        return Ok(SecondFactor::Failed);
    }
    if code.trim().is_empty() {
        return Ok(SecondFactor::Failed);
    }
    let (name, hash) = (user.to_string(), crate::mfa::recovery_hash(code));
    let used = st
        .db(move |s| {
            let used = s.user_use_recovery(&name, &hash)?;
            if used {
                s.audit_append(&AuditEntry {
                    id: 0,
                    ts: now_micros(),
                    actor: format!("user:{name}"),
                    action: "recovery_code".into(),
                    alert_id: None,
                    incident_id: None,
                    detail: "signed in with a one-time recovery code".into(),
                })?;
            }
            Ok(used)
        })
        .await?;
    Ok(if used {
        SecondFactor::Passed
    } else {
        SecondFactor::Failed
    })
}

/// A form carrying only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

/// Check a form's CSRF token against the session's (tokens need none: they
/// are not sent by browsers on their own).
pub fn check_csrf(p: &Principal, headers: &HeaderMap, sent: &str) -> Result<(), ApiError> {
    if !same_origin(headers) {
        return Err(ApiError::forbidden("cross-site request refused"));
    }
    match p {
        Principal::User { csrf, .. } if !auth::constant_time_eq(csrf, sent) => {
            Err(ApiError::forbidden("missing or wrong CSRF token"))
        }
        _ => Ok(()),
    }
}

/// `POST /logout`.
pub async fn logout(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    check_csrf(&p, &headers, &f.csrf)?;
    if let Principal::User { session_hash, .. } = p {
        st.db(move |s| s.session_delete(&session_hash)).await?;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ww_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}
