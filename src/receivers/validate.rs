//! Per-item validation: spans and log records with unusable ids are dropped one by one and
//! reported through OTLP partial success, instead of failing the whole request (OTLP.md §4).
//!
//! Spans need a 16-byte trace id and an 8-byte span id, neither all zero, and a parent span id
//! that is empty or 8 bytes. Log record ids are optional: a wrong length rejects the record, an
//! all-zero id means "no trace context" (the OTLP logs data model) and is cleared.

use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

/// The id field a rejected item failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdField {
    /// `trace_id`.
    Trace,
    /// `span_id`.
    Span,
    /// `parent_span_id`.
    ParentSpan,
}

/// What is wrong with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdProblem {
    /// Right length, but every byte is zero (the invalid id of the OTLP spec).
    AllZero,
    /// Wrong number of bytes (0 means missing).
    Length {
        /// Bytes received.
        found: usize,
        /// Bytes required.
        expected: usize,
    },
}

/// Why one item was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejection {
    /// The offending field.
    pub field: IdField,
    /// What is wrong with it.
    pub problem: IdProblem,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            IdField::Trace => "trace_id",
            IdField::Span => "span_id",
            IdField::ParentSpan => "parent_span_id",
        };
        match self.problem {
            IdProblem::AllZero => write!(f, "invalid {field} (all zero)"),
            IdProblem::Length { found: 0, expected } => {
                write!(f, "missing {field} (expected {expected} bytes)")
            }
            IdProblem::Length { found, expected } => {
                write!(f, "invalid {field} ({found} bytes, expected {expected})")
            }
        }
    }
}

/// The OTLP `partial_success` to report: how many items were dropped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Items rejected (`rejected_spans` / `rejected_log_records`).
    pub rejected: usize,
    /// English explanation (`error_message`).
    pub message: String,
}

/// Items rejected from one request, counted per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejections {
    counts: BTreeMap<Rejection, usize>,
}

impl Rejections {
    fn record(&mut self, rejection: Rejection) {
        *self.counts.entry(rejection).or_default() += 1;
    }

    /// Number of rejected items.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// The partial success to report, `None` when nothing was rejected. `item` / `items` name
    /// the signal's unit ("span" / "spans").
    pub fn partial_success(&self, item: &str, items: &str) -> Option<PartialSuccess> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let noun = |n: usize| if n == 1 { item } else { items };
        let reasons: Vec<String> = self
            .counts
            .iter()
            .map(|(reason, n)| format!("{reason} in {n} {}", noun(*n)))
            .collect();
        Some(PartialSuccess {
            rejected: total,
            message: format!(
                "{total} {} rejected: {}; trace ids must be 16 bytes and span ids 8 bytes, \
                 not all zero (hex strings in OTLP/JSON)",
                noun(total),
                reasons.join(", ")
            ),
        })
    }
}

fn check_id(id: &[u8], expected: usize) -> Option<IdProblem> {
    if id.len() != expected {
        Some(IdProblem::Length {
            found: id.len(),
            expected,
        })
    } else if id.iter().all(|b| *b == 0) {
        Some(IdProblem::AllZero)
    } else {
        None
    }
}

/// The first problem of a span's ids, if any.
pub fn check_span(span: &Span) -> Option<Rejection> {
    let reject = |field| move |problem| Rejection { field, problem };
    if let Some(p) = check_id(&span.trace_id, TRACE_ID_LEN) {
        return Some(reject(IdField::Trace)(p));
    }
    if let Some(p) = check_id(&span.span_id, SPAN_ID_LEN) {
        return Some(reject(IdField::Span)(p));
    }
    if !span.parent_span_id.is_empty() {
        if let Some(p) = check_id(&span.parent_span_id, SPAN_ID_LEN) {
            return Some(reject(IdField::ParentSpan)(p));
        }
    }
    None
}

/// Check a log record's optional ids: a wrong length rejects it, all-zero ids are cleared.
pub fn check_log_record(record: &mut LogRecord) -> Option<Rejection> {
    for (field, id, expected) in [
        (IdField::Trace, &mut record.trace_id, TRACE_ID_LEN),
        (IdField::Span, &mut record.span_id, SPAN_ID_LEN),
    ] {
        if id.is_empty() {
            continue;
        }
        match check_id(id, expected) {
            None => {}
            Some(IdProblem::AllZero) => id.clear(),
            Some(problem) => return Some(Rejection { field, problem }),
        }
    }
    None
}

/// Drop spans with invalid ids (and scopes / resources left without spans).
pub fn validate_traces(request: &mut ExportTraceServiceRequest) -> Rejections {
    let mut rejections = Rejections::default();
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            ss.spans.retain(|span| match check_span(span) {
                None => true,
                Some(r) => {
                    rejections.record(r);
                    false
                }
            });
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    request
        .resource_spans
        .retain(|rs| !rs.scope_spans.is_empty());
    rejections
}

/// Drop log records with malformed ids (and scopes / resources left without records).
pub fn validate_logs(request: &mut ExportLogsServiceRequest) -> Rejections {
    let mut rejections = Rejections::default();
    for rl in &mut request.resource_logs {
        for sl in &mut rl.scope_logs {
            sl.log_records
                .retain_mut(|record| match check_log_record(record) {
                    None => true,
                    Some(r) => {
                        rejections.record(r);
                        false
                    }
                });
        }
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    request.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
    rejections
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::test_support::{log_record, log_request, span, trace_request};

    const T: [u8; 16] = [0xab; 16];
    const S: [u8; 8] = [0xcd; 8];

    #[test]
    fn span_id_table() {
        // (name, trace id, span id, parent span id, expected rejection)
        type Case = (
            &'static str,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            ("valid root", T.to_vec(), S.to_vec(), vec![], None),
            ("valid child", T.to_vec(), S.to_vec(), vec![1; 8], None),
            (
                "last byte set is valid",
                {
                    let mut t = vec![0; 16];
                    t[15] = 1;
                    t
                },
                vec![0, 0, 0, 0, 0, 0, 0, 1],
                vec![],
                None,
            ),
            (
                "all-zero trace id",
                vec![0; 16],
                S.to_vec(),
                vec![],
                Some("invalid trace_id (all zero)"),
            ),
            (
                "missing trace id",
                vec![],
                S.to_vec(),
                vec![],
                Some("missing trace_id (expected 16 bytes)"),
            ),
            (
                "hex text in a bytes field (32 bytes)",
                b"5b8efff798038103d269b633813fc60c".to_vec(),
                S.to_vec(),
                vec![],
                Some("invalid trace_id (32 bytes, expected 16)"),
            ),
            (
                "8-byte trace id",
                vec![1; 8],
                S.to_vec(),
                vec![],
                Some("invalid trace_id (8 bytes, expected 16)"),
            ),
            (
                "all-zero span id",
                T.to_vec(),
                vec![0; 8],
                vec![],
                Some("invalid span_id (all zero)"),
            ),
            (
                "16-byte span id",
                T.to_vec(),
                vec![1; 16],
                vec![],
                Some("invalid span_id (16 bytes, expected 8)"),
            ),
            (
                "short parent",
                T.to_vec(),
                S.to_vec(),
                vec![1; 4],
                Some("invalid parent_span_id (4 bytes, expected 8)"),
            ),
            (
                "all-zero parent",
                T.to_vec(),
                S.to_vec(),
                vec![0; 8],
                Some("invalid parent_span_id (all zero)"),
            ),
        ];
        for (name, trace_id, span_id, parent, expected) in cases {
            let got = check_span(&span(&trace_id, &span_id, &parent)).map(|r| r.to_string());
            assert_eq!(got.as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn mixed_batch_keeps_valid_spans_and_reports_the_rest() {
        let mut req = trace_request(vec![
            span(&T, &S, &[]),
            span(&[0; 16], &S, &[]),
            span(&T, &[1; 8], &S),
            span(&[0; 16], &[2; 8], &[]),
            span(&T, &[1, 2, 3, 4], &[]),
        ]);
        // A second resource whose only span is invalid disappears entirely.
        let mut other = trace_request(vec![span(&[9; 16], &[], &[])]);
        req.resource_spans.append(&mut other.resource_spans);

        let rejections = validate_traces(&mut req);
        assert_eq!(rejections.total(), 4);
        assert_eq!(req.resource_spans.len(), 1);
        let kept = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].span_id, S);
        assert_eq!(kept[1].span_id, [1; 8]);

        let partial = rejections.partial_success("span", "spans").unwrap();
        assert_eq!(partial.rejected, 4);
        assert_eq!(
            partial.message,
            "4 spans rejected: invalid trace_id (all zero) in 2 spans, missing span_id (expected \
             8 bytes) in 1 span, invalid span_id (4 bytes, expected 8) in 1 span; trace ids must \
             be 16 bytes and span ids 8 bytes, not all zero (hex strings in OTLP/JSON)"
        );
    }

    #[test]
    fn all_valid_means_no_partial_success() {
        let mut req = trace_request(vec![span(&T, &S, &[]), span(&T, &[1; 8], &S)]);
        let before = req.clone();
        let rejections = validate_traces(&mut req);
        assert_eq!(rejections.total(), 0);
        assert_eq!(rejections.partial_success("span", "spans"), None);
        assert_eq!(req, before);
    }

    #[test]
    fn log_records() {
        let mut req = log_request(vec![
            log_record(&[], &[]),          // no context: fine
            log_record(&T, &S),            // full context: fine
            log_record(&[0; 16], &[0; 8]), // all-zero: cleared, kept
            log_record(&T[..8], &S),       // wrong trace id length: rejected
            log_record(&T, &[1, 2, 3]),    // wrong span id length: rejected
        ]);
        let rejections = validate_logs(&mut req);
        let kept = &req.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(kept.len(), 3);
        assert!(kept[2].trace_id.is_empty() && kept[2].span_id.is_empty());
        assert_eq!(kept[1].trace_id, T);
        let partial = rejections
            .partial_success("log record", "log records")
            .unwrap();
        assert_eq!(partial.rejected, 2);
        assert!(
            partial.message.starts_with(
                "2 log records rejected: invalid trace_id (8 bytes, expected 16) in 1 log \
                 record, invalid span_id (3 bytes, expected 8) in 1 log record;"
            ),
            "{}",
            partial.message
        );
    }
}
