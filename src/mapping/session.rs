//! Session and end-user ids from every convention's keys (CONVENTIONS.md §13, §16.5), plus
//! configured extra keys, searched on the span, then its resource, then its joined log records.

use serde_json::{Map, Value};

use super::view::{value_str, SpanView};

/// Built-in session keys, highest priority first.
pub const SESSION_KEYS: &[&str] = &[
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
    "langfuse.session.id",
    "ai.telemetry.metadata.sessionId",
    "ai.settings.context.sessionId",
    "gen_ai.session.id",
    "gcp.vertex.agent.session_id",
    // Ignored by MLflow itself; accepted here as a last resort.
    "mlflow.trace.session",
];

/// Built-in end-user keys, highest priority first.
pub const USER_KEYS: &[&str] = &[
    "user.id",
    "traceloop.association.properties.user_id",
    "langfuse.user.id",
    "ai.telemetry.metadata.userId",
    "ai.settings.context.userId",
    "enduser.id",
    "gen_ai.user.id",
    "mlflow.trace.user",
];

/// Longest session id MLflow accepts (`validate_session_id`); a longer one fails a whole OTLP
/// request there, so tracebridge shortens it before storing or forwarding.
pub const MAX_SESSION_ID_CHARS: usize = 250;

/// The first of `extra` then `builtin` keys with a non-empty value, looked up on the span's
/// attributes, then its resource, then its log records' attributes.
pub fn find(view: &SpanView<'_>, extra: &[String], builtin: &[&str]) -> Option<String> {
    let maps = std::iter::once(view.attributes)
        .chain(std::iter::once(view.resource))
        .chain(view.logs.iter().map(|l| &l.attributes));
    for map in maps {
        if let Some(v) = first_in(
            map,
            extra
                .iter()
                .map(String::as_str)
                .chain(builtin.iter().copied()),
        ) {
            return Some(v);
        }
    }
    None
}

fn first_in<'k>(map: &Map<String, Value>, keys: impl Iterator<Item = &'k str>) -> Option<String> {
    keys.into_iter()
        .find_map(|k| map.get(k).and_then(value_str))
}

/// A session id MLflow accepts: ids of at most 250 characters are kept; longer ones become their
/// first 233 characters, `~`, and 16 hex digits of the FNV-1a 64 hash of the whole id — the same
/// input always gives the same 250-character id, and different long ids stay distinct.
pub fn fit_session_id(id: String) -> String {
    if id.chars().count() <= MAX_SESSION_ID_CHARS {
        return id;
    }
    let head: String = id.chars().take(MAX_SESSION_ID_CHARS - 17).collect();
    format!("{head}~{:016x}", fnv1a64(id.as_bytes()))
}

/// FNV-1a, 64 bits: a fixed, documented function, so shortened ids stay stable across releases.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::view::LogView;
    use serde_json::json;

    fn view<'a>(
        attrs: &'a Map<String, Value>,
        res: &'a Map<String, Value>,
        logs: &'a [LogView],
    ) -> SpanView<'a> {
        SpanView {
            name: "s",
            is_root: true,
            status_code: 0,
            attributes: attrs,
            events: &[],
            resource: res,
            scope_name: "",
            logs,
        }
    }

    #[test]
    fn keys_in_priority_order_and_places() {
        let cases: &[(Value, Value, &[&str], Option<&str>)] = &[
            (
                json!({"gen_ai.conversation.id": "c", "session.id": "s"}),
                json!({}),
                &[],
                Some("s"),
            ),
            (
                json!({"traceloop.association.properties.session_id": "t"}),
                json!({}),
                &[],
                Some("t"),
            ),
            (
                json!({"ai.telemetry.metadata.sessionId": "v"}),
                json!({}),
                &[],
                Some("v"),
            ),
            (
                json!({"ai.settings.context.sessionId": "v7"}),
                json!({}),
                &[],
                Some("v7"),
            ),
            (
                json!({"langfuse.session.id": "l"}),
                json!({}),
                &[],
                Some("l"),
            ),
            (json!({}), json!({"session.id": "r"}), &[], Some("r")),
            (
                json!({"session.id": "\"quoted\""}),
                json!({}),
                &[],
                Some("quoted"),
            ),
            (json!({"session.id": ""}), json!({}), &[], None),
            (
                json!({"x-session": "h", "session.id": "s"}),
                json!({}),
                &["x-session"],
                Some("h"),
            ),
        ];
        for (attrs, res, extra, want) in cases {
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            let (a, r) = (attrs.as_object().unwrap(), res.as_object().unwrap());
            assert_eq!(
                find(&view(a, r, &[]), &extra, SESSION_KEYS).as_deref(),
                *want,
                "{attrs}"
            );
        }
        let logs = [LogView {
            attributes: json!({"user.id": "from-log"}).as_object().unwrap().clone(),
            ..Default::default()
        }];
        let empty = Map::new();
        assert_eq!(
            find(&view(&empty, &empty, &logs), &[], USER_KEYS).as_deref(),
            Some("from-log")
        );
    }

    #[test]
    fn long_session_ids_are_shortened_deterministically() {
        let short = "s".repeat(250);
        assert_eq!(fit_session_id(short.clone()), short);
        let long = "x".repeat(300);
        let a = fit_session_id(long.clone());
        assert_eq!(a.chars().count(), 250);
        assert_eq!(a, fit_session_id(long));
        assert_ne!(a, fit_session_id(format!("{}y", "x".repeat(299))));
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
