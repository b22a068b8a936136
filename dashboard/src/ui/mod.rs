//! The web UI: server-rendered askama pages (auto-escaped; no `|safe` on
//! data), one embedded stylesheet and one script (no inline code, so the
//! strict CSP holds), sign-in and CSRF-checked forms.

mod assets;
mod fleet;
pub mod format;
pub mod incidents;
pub mod pages;
mod render;
mod session;

pub use assets::static_file;
pub use render::render;
pub use session::{CsrfForm, LoginForm, check_csrf, login_page, login_submit, logout, same_origin};

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The authenticated UI routes (the auth layer is applied by the server).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/alerts", get(pages::alerts))
        .route("/alerts/{id}", get(pages::alert))
        .route("/alerts/{id}/triage", post(pages::triage))
        .route("/alerts/{id}/action", post(pages::run_action))
        .route("/incidents", get(incidents::incidents))
        .route("/incidents/{id}", get(incidents::incident))
        .route("/incidents/{id}/triage", post(incidents::triage))
        .route("/incidents/{id}/action", post(incidents::run_action))
        .route("/accounts", get(pages::accounts))
        .route("/accounts/{id}", get(pages::account))
        .route("/audit", get(pages::audit))
        .route("/sensors", get(fleet::sensors))
        .route("/logout", post(logout))
}
