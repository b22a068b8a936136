//! Deciding, for one ingest batch, which incident each new alert joins.
//!
//! The store drives a [`Grouper`] inside its ingest transaction: it reads
//! the stored bindings of the batch's keys ([`Grouper::keys`],
//! [`Grouper::bind`]), loads the incidents a route names
//! ([`Grouper::missing`], [`Grouper::loaded`]), creates a row when an alert
//! starts a new one, and writes what [`Grouper::finish`] returns. Nothing
//! here touches a database.

use super::{Incident, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The grouping of one batch, to be written by the store.
#[derive(Debug, Default)]
pub struct Grouped {
    /// Every incident touched, as it now is.
    pub incidents: Vec<Incident>,
    /// Key bindings to upsert: (key, incident, last alert time).
    pub keys: Vec<(String, i64, i64)>,
    /// New memberships: (alert, incident).
    pub members: Vec<(i64, i64)>,
    /// Incidents merged away, in order: (from, into). Move `from`'s alerts,
    /// keys and audit lines to `into`, then delete `from`.
    pub merged: Vec<(i64, i64)>,
}

/// Groups one batch of alerts (see the module documentation).
#[derive(Debug)]
pub struct Grouper {
    window: i64,
    bindings: HashMap<String, (i64, i64)>,
    dirty: BTreeSet<String>,
    incidents: BTreeMap<i64, Incident>,
    members: Vec<(i64, i64)>,
    merged: Vec<(i64, i64)>,
}

impl Grouper {
    /// A grouper whose keys link alerts at most `window` microseconds after
    /// the key's last alert.
    pub fn new(window: i64) -> Grouper {
        Grouper {
            window,
            bindings: HashMap::new(),
            dirty: BTreeSet::new(),
            incidents: BTreeMap::new(),
            members: Vec::new(),
            merged: Vec::new(),
        }
    }

    /// Every key of the batch, sorted and without repeats (the order in
    /// which a store locks them).
    pub fn keys(batch: &[Observed]) -> Vec<String> {
        let set: BTreeSet<&str> = batch
            .iter()
            .flat_map(|o| o.keys.iter().map(|k| k.text.as_str()))
            .collect();
        set.into_iter().map(String::from).collect()
    }

    /// A stored binding: `key` last linked an alert at `last_ts` to `incident`.
    pub fn bind(&mut self, key: String, incident: i64, last_ts: i64) {
        self.bindings.insert(key, (incident, last_ts));
    }

    /// The incidents `o` would join (several: they merge into the first),
    /// oldest first; empty when it starts a new one.
    pub fn route(&self, o: &Observed) -> Vec<i64> {
        let since = o.ts.saturating_sub(self.window);
        let ids: BTreeSet<i64> = o
            .keys
            .iter()
            .filter_map(|k| self.bindings.get(&k.text))
            .filter(|(_, last)| *last >= since)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().collect()
    }

    /// Which of `ids` the store must load ([`Grouper::loaded`]).
    pub fn missing(&self, ids: &[i64]) -> Vec<i64> {
        ids.iter()
            .copied()
            .filter(|id| !self.incidents.contains_key(id))
            .collect()
    }

    /// A stored incident, loaded.
    pub fn loaded(&mut self, incident: Incident) {
        self.incidents.insert(incident.id, incident);
    }

    /// A binding's incident no longer exists (deleted meanwhile): forget
    /// the bindings to it.
    pub fn forget(&mut self, id: i64) {
        self.bindings.retain(|_, (i, _)| *i != id);
    }

    /// Place `o`: into the incidents [`Grouper::route`] named (all loaded),
    /// or, when it named none, into the new incident row `new_id` the
    /// store created. Returns the incident.
    pub fn place(&mut self, o: &Observed, new_id: Option<i64>) -> i64 {
        let ids = self.route(o);
        let target = match (ids.first(), new_id) {
            (Some(first), _) => *first,
            (None, Some(id)) => {
                self.incidents.insert(id, Incident::empty(id, o));
                id
            }
            // The store did not create a row: nothing to place into.
            (None, None) => return 0,
        };
        for &from in ids.iter().skip(1) {
            if let Some(other) = self.incidents.remove(&from)
                && let Some(into) = self.incidents.get_mut(&target)
            {
                into.merge(other);
                self.merged.push((from, target));
                for m in self.members.iter_mut().filter(|m| m.1 == from) {
                    m.1 = target;
                }
                for (key, (id, _)) in self.bindings.iter_mut() {
                    if *id == from {
                        *id = target;
                        self.dirty.insert(key.clone());
                    }
                }
            }
        }
        if let Some(inc) = self.incidents.get_mut(&target) {
            if inc.status == "resolved" || inc.status == "false_positive" {
                // A new alert reopens a closed incident.
                inc.status = "new".into();
            }
            inc.absorb(o);
        }
        for k in &o.keys {
            let b = self
                .bindings
                .entry(k.text.clone())
                .or_insert((target, o.ts));
            b.1 = if b.0 == target { b.1.max(o.ts) } else { o.ts };
            b.0 = target;
            self.dirty.insert(k.text.clone());
        }
        self.members.push((o.id, target));
        target
    }

    /// What to write.
    pub fn finish(self) -> Grouped {
        let keys = self
            .dirty
            .into_iter()
            .filter_map(|k| {
                let (id, last) = *self.bindings.get(&k)?;
                Some((k, id, last))
            })
            .collect();
        Grouped {
            incidents: self.incidents.into_values().collect(),
            keys,
            members: self.members,
            merged: self.merged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn known(id: i64, ts: i64, flow: &str, ranges: &str) -> Observed {
        let body = format!(
            r#"{{"src_ip":"10.0.0.1","dest_ip":"192.0.2.9","community_id":"{flow}",
               "alert":{{"category":"weights_known","severity":2,"signature":"k"}},
               "evidence":{{"known_file_sha256":"ff","known_file":"/m/a.bin","known_file_bytes":100,
                            "file_ranges":{ranges},"object_bytes_seen":10}}}}"#
        );
        Observed::parse(id, ts, &body).expect("alert")
    }

    fn format(id: i64, ts: i64, flow: &str) -> Observed {
        let body = format!(
            r#"{{"src_ip":"10.0.0.1","dest_ip":"192.0.2.9","community_id":"{flow}",
               "alert":{{"category":"weights_format","severity":1,"signature":"f"}}}}"#
        );
        Observed::parse(id, ts, &body).expect("alert")
    }

    /// Group `batch` alone, as a store with no prior incidents would.
    fn group(window: i64, batch: &[Observed]) -> Grouped {
        let mut g = Grouper::new(window);
        let mut next = 100;
        for o in batch {
            let new_id = g.route(o).is_empty().then(|| {
                next += 1;
                next
            });
            g.place(o, new_id);
        }
        g.finish()
    }

    #[test]
    fn one_file_over_many_flows_and_hours_is_one_incident_with_the_union() {
        let batch: Vec<Observed> = (0..10)
            .map(|i| {
                known(
                    i,
                    i * HOUR / 2,
                    &format!("flow{i}"),
                    &format!("[[{},{}]]", i * 10, i * 10 + 10),
                )
            })
            .collect();
        let g = group(24 * HOUR, &batch);
        assert_eq!(g.incidents.len(), 1);
        let inc = &g.incidents[0];
        assert_eq!(inc.alert_count, 10);
        assert_eq!(inc.coverage(), Some(1.0));
        assert_eq!(inc.bytes(), 100);
        assert_eq!(inc.title, "registered file a.bin from 10.0.0.1");
        assert!(g.members.iter().all(|(_, i)| *i == inc.id));
    }

    #[test]
    fn beyond_the_window_a_key_starts_a_new_incident() {
        let batch = [
            known(1, 0, "a", "[[0,10]]"),
            known(2, 25 * HOUR, "b", "[[10,20]]"),
        ];
        let g = group(24 * HOUR, &batch);
        assert_eq!(g.incidents.len(), 2);
        assert!(g.incidents.iter().all(|i| i.coverage() == Some(0.1)));
    }

    #[test]
    fn an_alert_linking_two_incidents_merges_them_into_the_oldest() {
        // A format alert on flow x, a known alert on flow y: two incidents;
        // then the known alert of flow x links both.
        let batch = [
            format(1, 0, "x"),
            known(2, 1, "y", "[[0,50]]"),
            known(3, 2, "x", "[[50,90]]"),
        ];
        let g = group(24 * HOUR, &batch);
        assert_eq!(g.incidents.len(), 1);
        assert_eq!(g.merged, vec![(102, 101)]);
        let inc = &g.incidents[0];
        assert_eq!((inc.id, inc.alert_count, inc.severity), (101, 3, 1));
        assert_eq!(inc.coverage(), Some(0.9));
        assert!(g.keys.iter().all(|(_, id, _)| *id == 101));
        assert_eq!(g.members, vec![(1, 101), (2, 101), (3, 101)]);
    }
}
