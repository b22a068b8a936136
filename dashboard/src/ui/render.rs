//! Templates into responses.

use crate::error::ApiError;
use askama::Template;
use axum::response::{Html, IntoResponse, Response};

/// Render a template into a response (500 if rendering fails).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
