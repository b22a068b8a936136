//! BPF filters on replayed records, as `tcpdump -r FILE EXPR` and
//! `suricata -r FILE EXPR` apply them: libpcap compiles the expression for
//! the link type of each record (a pcapng file may mix several) and runs
//! it on the record's bytes.

use pcap::{BpfProgram, Capture, Linktype};

/// An expression libpcap could not compile.
#[derive(Debug, thiserror::Error)]
#[error("BPF filter {expr:?}: {message}")]
pub struct FilterError {
    /// The expression.
    pub expr: String,
    /// libpcap's message.
    pub message: String,
}

/// A BPF expression and its programs, compiled on first use per link type.
pub struct BpfFilter {
    expr: String,
    /// Per link type: its program, or `None` when the expression does not
    /// compile for it (no record of that link type matches).
    programs: Vec<(i32, Option<BpfProgram>)>,
}

impl std::fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expr", &self.expr)
            .field(
                "link_types",
                &self.programs.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn compile(expr: &str, link: i32) -> Result<BpfProgram, pcap::Error> {
    Capture::dead(Linktype(link))?.compile(expr, true)
}

impl BpfFilter {
    /// A filter for `expr`, checked by compiling it for Ethernet.
    pub fn new(expr: &str) -> Result<BpfFilter, FilterError> {
        let ethernet =
            compile(expr, crate::decode::linktype::ETHERNET).map_err(|e| FilterError {
                expr: expr.to_string(),
                message: e.to_string(),
            })?;
        Ok(BpfFilter {
            expr: expr.to_string(),
            programs: vec![(crate::decode::linktype::ETHERNET, Some(ethernet))],
        })
    }

    /// Whether a record of link type `link` with bytes `frame` passes.
    pub fn matches(&mut self, link: i32, frame: &[u8]) -> bool {
        let i = match self.programs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                let program = compile(&self.expr, link)
                    .map_err(|e| {
                        tracing::warn!(
                            link,
                            expr = self.expr,
                            "BPF filter does not compile for this link type, its records are left out: {e}"
                        );
                    })
                    .ok();
                self.programs.push((link, program));
                self.programs.len() - 1
            }
        };
        self.programs[i].1.as_ref().is_some_and(|p| p.filter(frame))
    }
}
