//! The `attributes` processor: drop attributes by key, or keep only allowed keys, on spans, span
//! events and links, resources, scopes and log records.
//!
//! Patterns are exact keys or prefixes ending in `*` (`llm.input_messages.*`, `gen_ai.prompt*`).
//! `drop` removes matching keys; a non-empty `allow` keeps only matching keys (then `drop` still
//! applies). Mapping runs after processors, so what is dropped here is never mapped, stored,
//! forwarded or logged.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::{Deserialize, Serialize};

use super::processor::Processor;
use super::{ExportBatch, Payload};

/// Where the filter applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Span attributes.
    Spans,
    /// Span event and link attributes.
    Events,
    /// Resource attributes.
    Resource,
    /// Instrumentation scope attributes.
    Scope,
    /// Log record attributes.
    Logs,
}

/// Settings of one `attributes` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeFilterSettings {
    /// Keys (or `prefix*`) to remove.
    #[serde(default)]
    pub drop: Vec<String>,
    /// When non-empty, keys (or `prefix*`) to keep; every other key is removed.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Where to apply (default: every place).
    #[serde(default = "all_targets")]
    pub apply_to: Vec<Target>,
}

fn all_targets() -> Vec<Target> {
    vec![
        Target::Spans,
        Target::Events,
        Target::Resource,
        Target::Scope,
        Target::Logs,
    ]
}

/// One key pattern.
#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(p: &str) -> Result<Self, String> {
        match p.strip_suffix('*') {
            _ if p.is_empty() => Err("empty key pattern".into()),
            Some(prefix) if prefix.contains('*') => Err(format!(
                "pattern {p:?}: '*' is only allowed at the end (a key prefix)"
            )),
            Some(prefix) => Ok(Self::Prefix(prefix.to_string())),
            None if p.contains('*') => Err(format!(
                "pattern {p:?}: '*' is only allowed at the end (a key prefix)"
            )),
            None => Ok(Self::Exact(p.to_string())),
        }
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Self::Exact(k) => k == key,
            Self::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// The built processor.
#[derive(Debug)]
pub struct AttributeFilter {
    name: String,
    drop: Vec<Pattern>,
    allow: Vec<Pattern>,
    targets: Vec<Target>,
}

impl AttributeFilter {
    /// Build from settings; fails on a malformed pattern or an empty rule.
    pub fn new(name: String, s: AttributeFilterSettings) -> Result<Self, String> {
        if s.drop.is_empty() && s.allow.is_empty() {
            return Err("needs `drop` or `allow` keys".into());
        }
        let parse = |v: &[String]| -> Result<Vec<Pattern>, String> {
            v.iter().map(|p| Pattern::parse(p)).collect()
        };
        Ok(Self {
            name,
            drop: parse(&s.drop)?,
            allow: parse(&s.allow)?,
            targets: s.apply_to,
        })
    }

    fn keeps(&self, key: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(key)))
            && !self.drop.iter().any(|p| p.matches(key))
    }

    fn filter(&self, target: Target, attrs: &mut Vec<KeyValue>) -> u64 {
        if !self.targets.contains(&target) {
            return 0;
        }
        let before = attrs.len();
        attrs.retain(|kv| self.keeps(&kv.key));
        (before - attrs.len()) as u64
    }
}

impl Processor for AttributeFilter {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &mut ExportBatch) -> u64 {
        let mut n = 0;
        match &mut batch.payload {
            Payload::Traces(req) => {
                for rs in &mut req.resource_spans {
                    if let Some(r) = rs.resource.as_mut() {
                        n += self.filter(Target::Resource, &mut r.attributes);
                    }
                    for ss in &mut rs.scope_spans {
                        if let Some(s) = ss.scope.as_mut() {
                            n += self.filter(Target::Scope, &mut s.attributes);
                        }
                        for span in &mut ss.spans {
                            n += self.filter(Target::Spans, &mut span.attributes);
                            for e in &mut span.events {
                                n += self.filter(Target::Events, &mut e.attributes);
                            }
                            for l in &mut span.links {
                                n += self.filter(Target::Events, &mut l.attributes);
                            }
                        }
                    }
                }
            }
            Payload::Logs(req) => {
                for rl in &mut req.resource_logs {
                    if let Some(r) = rl.resource.as_mut() {
                        n += self.filter(Target::Resource, &mut r.attributes);
                    }
                    for sl in &mut rl.scope_logs {
                        if let Some(s) = sl.scope.as_mut() {
                            n += self.filter(Target::Scope, &mut s.attributes);
                        }
                        for rec in &mut sl.log_records {
                            n += self.filter(Target::Logs, &mut rec.attributes);
                        }
                    }
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};

    fn kv(k: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("v".into())),
            }),
            ..Default::default()
        }
    }

    fn batch(keys: &[&str]) -> ExportBatch {
        let attrs: Vec<KeyValue> = keys.iter().map(|k| kv(k)).collect();
        ExportBatch {
            experiment_id: "0".into(),
            payload: Payload::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: attrs.clone(),
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span {
                            attributes: attrs.clone(),
                            events: vec![Event {
                                attributes: attrs,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
        }
    }

    fn span_keys(b: &ExportBatch) -> (Vec<String>, Vec<String>, Vec<String>) {
        let Payload::Traces(r) = &b.payload else {
            unreachable!()
        };
        let rs = &r.resource_spans[0];
        let span = &rs.scope_spans[0].spans[0];
        let keys = |a: &[KeyValue]| a.iter().map(|k| k.key.clone()).collect();
        (
            keys(&span.attributes),
            keys(&span.events[0].attributes),
            keys(&rs.resource.as_ref().unwrap().attributes),
        )
    }

    fn settings(drop: &[&str], allow: &[&str], to: Option<Vec<Target>>) -> AttributeFilterSettings {
        AttributeFilterSettings {
            drop: drop.iter().map(|s| s.to_string()).collect(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            apply_to: to.unwrap_or_else(all_targets),
        }
    }

    #[test]
    fn drops_exact_keys_and_prefixes_everywhere() {
        let f = AttributeFilter::new(
            "a".into(),
            settings(&["secret", "gen_ai.prompt*"], &[], None),
        )
        .unwrap();
        let mut b = batch(&[
            "secret",
            "gen_ai.prompt.0.content",
            "gen_ai.system",
            "secrets",
        ]);
        assert_eq!(f.process(&mut b), 6);
        let (span, event, resource) = span_keys(&b);
        assert_eq!(span, ["gen_ai.system", "secrets"]);
        assert_eq!(event, span);
        assert_eq!(resource, span);
    }

    #[test]
    fn allow_keeps_only_listed_keys_and_drop_still_applies() {
        let f = AttributeFilter::new(
            "a".into(),
            settings(
                &["gen_ai.usage.cost"],
                &["gen_ai.*", "session.id"],
                Some(vec![Target::Spans]),
            ),
        )
        .unwrap();
        let mut b = batch(&[
            "gen_ai.system",
            "gen_ai.usage.cost",
            "session.id",
            "http.url",
        ]);
        assert_eq!(f.process(&mut b), 2);
        let (span, event, resource) = span_keys(&b);
        assert_eq!(span, ["gen_ai.system", "session.id"]);
        // Only spans were targeted.
        assert_eq!(event.len(), 4);
        assert_eq!(resource.len(), 4);
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = AttributeFilter::new("a".into(), settings(&["a*b"], &[], None)).unwrap_err();
        assert!(e.contains("a*b"), "{e}");
        let e = AttributeFilter::new("a".into(), settings(&[], &[], None)).unwrap_err();
        assert!(e.contains("drop"), "{e}");
        assert!(AttributeFilter::new("a".into(), settings(&[""], &[], None)).is_err());
    }
}
