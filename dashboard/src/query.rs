//! The alert list's query string, shared by `GET /api/v1/alerts` and the
//! alert list page, and the page sizes of the list endpoints.

use crate::error::ApiError;
use crate::incidents::Kind;
use crate::store::{AlertFilter, Cursor, IncidentFilter, Status};
use serde::Deserialize;

/// Largest page of the alert list.
pub const MAX_LIMIT: usize = 10_000;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// Query string of `GET /api/v1/alerts` (and the alert list page).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AlertQuery {
    /// Start of the time range: RFC 3339, Suricata's form (`+0000`) or Unix seconds.
    pub from: Option<String>,
    /// End of the time range (exclusive).
    pub to: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Severity 1..=3.
    pub severity: Option<String>,
    /// Triage status.
    pub status: Option<String>,
    /// Sensor id.
    pub sensor: Option<String>,
    /// Source address.
    pub src: Option<String>,
    /// Destination address.
    pub dest: Option<String>,
    /// Account id.
    pub account: Option<String>,
    /// Free text.
    pub q: Option<String>,
    /// Page position.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = v.parse::<i64>() {
        return secs
            .checked_mul(1_000_000)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: out of range")));
    }
    eve::Timestamp::parse(v)
        .map(|t| t.unix_micros())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "{name}: not a time (RFC 3339, Suricata's +0000 form) or Unix seconds: {e}"
            ))
        })
}

/// Query string of `GET /api/v1/incidents` (and the incident list page).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IncidentQuery {
    /// Incidents active at or after this time (as `from` of the alert list).
    pub from: Option<String>,
    /// Incidents begun before this time.
    pub to: Option<String>,
    /// What it groups (`file`, `cluster`, `account`, `transfer`, `egress`).
    pub kind: Option<String>,
    /// Holding an alert of this category.
    pub category: Option<String>,
    /// Highest severity 1..=3.
    pub severity: Option<String>,
    /// Triage status.
    pub status: Option<String>,
    /// Free text.
    pub q: Option<String>,
    /// Page position.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<String>,
}

impl IncidentQuery {
    /// Validate into a store filter (the same rules as the alert list's).
    pub fn to_filter(&self) -> Result<IncidentFilter, ApiError> {
        let alerts = AlertQuery {
            from: self.from.clone(),
            to: self.to.clone(),
            category: self.category.clone(),
            severity: self.severity.clone(),
            status: self.status.clone(),
            q: self.q.clone(),
            cursor: self.cursor.clone(),
            limit: self.limit.clone(),
            ..AlertQuery::default()
        }
        .to_filter()?;
        let kind = match nonempty(&self.kind) {
            Some(k) => Some(Kind::parse(&k).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown kind {k:?} (file, cluster, account, transfer, egress)"
                ))
            })?),
            None => None,
        };
        Ok(IncidentFilter {
            from: alerts.from,
            to: alerts.to,
            kind,
            category: alerts.category,
            severity: alerts.severity,
            status: alerts.status,
            text: alerts.text,
            cursor: alerts.cursor,
            limit: alerts.limit,
        })
    }
}

impl AlertQuery {
    /// Validate into a store filter.
    pub fn to_filter(&self) -> Result<AlertFilter, ApiError> {
        let category = nonempty(&self.category);
        if let Some(c) = &category
            && !eve::AlertCategory::ALL.iter().any(|x| x.as_str() == c)
        {
            return Err(ApiError::bad_request(format!("unknown category {c:?}")));
        }
        let severity = match nonempty(&self.severity) {
            Some(s) => match s.parse::<u8>() {
                Ok(n @ 1..=3) => Some(n),
                _ => return Err(ApiError::bad_request("severity must be 1, 2 or 3")),
            },
            None => None,
        };
        let limit = match nonempty(&self.limit) {
            Some(l) => match l.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit must be 1..={MAX_LIMIT}"
                    )));
                }
            },
            None => DEFAULT_LIMIT,
        };
        Ok(AlertFilter {
            from: nonempty(&self.from)
                .map(|v| parse_time("from", &v))
                .transpose()?,
            to: nonempty(&self.to)
                .map(|v| parse_time("to", &v))
                .transpose()?,
            category,
            severity,
            status: nonempty(&self.status)
                .map(|s| s.parse::<Status>())
                .transpose()
                .map_err(ApiError::bad_request)?,
            sensor: nonempty(&self.sensor),
            src: nonempty(&self.src),
            dest: nonempty(&self.dest),
            account: nonempty(&self.account),
            text: nonempty(&self.q),
            cursor: nonempty(&self.cursor)
                .map(|c| c.parse::<Cursor>())
                .transpose()
                .map_err(ApiError::bad_request)?,
            limit,
        })
    }
}
