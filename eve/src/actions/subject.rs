//! What an action runs on: a JSON document (an alert event, or another
//! document such as the dashboard's incident), the id its outcome is
//! reported under, and the values of the command's placeholders.

use crate::event::{AlertEvent, Event, EventKind};

/// A `{name}` a command's arguments may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// `{dest_ip}`: the destination address.
    DestIp,
    /// `{src_ip}`: the source address (the internal host).
    SrcIp,
    /// `{dest_port}`: the destination port.
    DestPort,
    /// `{account_id}`: the analyzer account.
    AccountId,
    /// `{category}`: the alert category.
    Category,
    /// `{event_id}`: the alert's event id.
    EventId,
}

impl Placeholder {
    /// Every placeholder.
    pub const ALL: [Placeholder; 6] = [
        Placeholder::DestIp,
        Placeholder::SrcIp,
        Placeholder::DestPort,
        Placeholder::AccountId,
        Placeholder::Category,
        Placeholder::EventId,
    ];

    /// The name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::DestIp => "dest_ip",
            Placeholder::SrcIp => "src_ip",
            Placeholder::DestPort => "dest_port",
            Placeholder::AccountId => "account_id",
            Placeholder::Category => "category",
            Placeholder::EventId => "event_id",
        }
    }

    fn parse(s: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One run's input: the JSON a webhook POSTs and a command reads on
/// standard input, the id its outcome is reported (and spooled) under, and
/// the placeholder values it has (a command needing one it lacks is
/// skipped).
#[derive(Clone, Debug)]
pub struct Subject {
    id: String,
    json: String,
    values: Vec<(Placeholder, String)>,
}

impl Subject {
    /// An alert event: its JSON line, its `event_id`, and every placeholder
    /// the alert has. `None` when `event` is not an alert.
    pub fn alert(event: &Event) -> Option<Subject> {
        match &event.kind {
            EventKind::Alert(alert) => Some(Subject::of_alert(event, alert)),
            _ => None,
        }
    }

    /// [`Subject::alert`] of `event`, whose body is `alert`.
    pub(super) fn of_alert(event: &Event, alert: &AlertEvent) -> Subject {
        let mut s = Subject::document(event.event_id.clone(), event.to_json_line())
            .with(Placeholder::Category, alert.alert.category.as_str())
            .with(Placeholder::EventId, event.event_id.clone());
        if let Some(n) = &event.net {
            s = s
                .with(Placeholder::DestIp, n.dest_ip.to_string())
                .with(Placeholder::SrcIp, n.src_ip.to_string())
                .with(Placeholder::DestPort, n.dest_port.to_string());
        }
        if let Some(a) = &alert.account_id {
            s = s.with(Placeholder::AccountId, a.clone());
        }
        s
    }

    /// Any other JSON document (`json`, one line) reported under `id`,
    /// with no placeholder values yet (add them with [`Subject::with`]).
    pub fn document(id: impl Into<String>, json: impl Into<String>) -> Subject {
        Subject {
            id: id.into(),
            json: json.into(),
            values: Vec::new(),
        }
    }

    /// The same subject reported under `id` instead.
    pub fn with_id(mut self, id: impl Into<String>) -> Subject {
        self.id = id.into();
        self
    }

    /// The same subject with `placeholder` set to `value` (replacing any).
    pub fn with(mut self, placeholder: Placeholder, value: impl Into<String>) -> Subject {
        self.values.retain(|(p, _)| *p != placeholder);
        self.values.push((placeholder, value.into()));
        self
    }

    /// The id outcomes are reported under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The JSON document.
    pub fn json(&self) -> &str {
        &self.json
    }

    fn value(&self, p: Placeholder) -> Option<&str> {
        self.values
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| v.as_str())
    }

    /// `argv` with each placeholder replaced; `None` when the subject lacks
    /// a value, or a value starts with `-` (it would read as an option).
    /// Braces around anything else are left as written.
    pub(super) fn fill(&self, argv: &[String]) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(argv.len());
        for arg in argv {
            let mut s = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some(open) = rest.find('{') {
                let (before, from) = rest.split_at(open);
                s.push_str(before);
                let close = from.find('}');
                match close.and_then(|c| Placeholder::parse(&from[1..c]).map(|p| (c, p))) {
                    Some((c, p)) => {
                        let v = self.value(p).filter(|v| !v.starts_with('-'))?;
                        s.push_str(v);
                        rest = &from[c + 1..];
                    }
                    None => {
                        s.push('{');
                        rest = &from[1..];
                    }
                }
            }
            s.push_str(rest);
            out.push(s);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, AlertCategory, AlertEvent, Evidence, NetworkFields, Proto};
    use crate::time::Timestamp;

    fn alert_event(account: Option<&str>) -> Event {
        let mut body = AlertEvent::new(
            Alert::new("x", 1, AlertCategory::EgressVolume, 1),
            Evidence::new(),
        );
        body.account_id = account.map(str::to_string);
        let e = Event::new(Timestamp::now(), EventKind::Alert(Box::new(body)));
        if account.is_some() {
            return e;
        }
        e.network(NetworkFields {
            flow_id: 1,
            community_id: String::new(),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: 5000,
            dest_ip: "198.51.100.7".parse().unwrap(),
            dest_port: 443,
            proto: Proto::Tcp,
            app_proto: None,
            vlan: None,
        })
    }

    fn fill(argv: &[String], e: &Event) -> Option<Vec<String>> {
        Subject::alert(e).unwrap().fill(argv)
    }

    #[test]
    fn placeholders_fill_and_missing_values_skip() {
        let argv: Vec<String> = [
            "nft",
            "add",
            "element",
            "inet",
            "f",
            "s",
            "{ {dest_ip} }",
            "{x}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let filled = fill(&argv, &alert_event(None)).unwrap();
        assert_eq!(filled[6], "{ 198.51.100.7 }");
        assert_eq!(filled[7], "{x}");
        assert_eq!(fill(&argv, &alert_event(Some("acct"))), None);
        let acct = vec!["suspend".to_string(), "{account_id}".to_string()];
        assert_eq!(
            fill(&acct, &alert_event(Some("acct-7"))).unwrap()[1],
            "acct-7"
        );
        assert_eq!(fill(&acct, &alert_event(Some("--all"))), None);
    }

    #[test]
    fn a_document_has_only_the_values_its_caller_gives() {
        let doc = Subject::document("incident:4", "{}").with(Placeholder::SrcIp, "10.0.0.9");
        let argv = vec!["block".to_string(), "{src_ip}".to_string()];
        assert_eq!(doc.fill(&argv).unwrap()[1], "10.0.0.9");
        assert_eq!(doc.fill(&["{dest_ip}".to_string()]), None);
        assert_eq!(doc.id(), "incident:4");
        assert!(
            Subject::alert(&Event::new(
                Timestamp::now(),
                EventKind::Stats(Default::default())
            ))
            .is_none()
        );
    }
}
