//! The mapping stage: each convention's attributes onto MLflow's trace model.
//!
//! [`map_traces`] enriches every span of a request in place (adding `mlflow.*` attributes, keeping
//! the originals) and returns the per-span [`SpanFacets`] the store aggregates into trace info.

mod facets;
mod mlflow_native;
pub mod preview;

pub use facets::{SpanFacets, TokenUsage};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Map every span of `req` in place; returns one [`SpanFacets`] per span, in the order of
/// `resource_spans → scope_spans → spans`.
pub fn map_traces(req: &mut ExportTraceServiceRequest) -> Vec<SpanFacets> {
    let mut out = Vec::new();
    for rs in &mut req.resource_spans {
        let resource_attrs: &[KeyValue] = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                out.push(map_span(span, resource_attrs));
            }
        }
    }
    out
}

/// Map one span: the facets the trace summary needs.
pub fn map_span(span: &mut Span, resource_attrs: &[KeyValue]) -> SpanFacets {
    mlflow_native::facets(span, resource_attrs)
}
