//! OTLP id conventions shared by every stage: 16-byte trace ids, 8-byte span ids, MLflow's
//! `tr-<32 hex>` trace ids and the base64 form MLflow prints inside spans.

use base64::Engine;

/// Prefix of MLflow trace ids (`tr-` + 32 lowercase hex characters of the OTLP trace id).
pub const MLFLOW_TRACE_ID_PREFIX: &str = "tr-";

/// True when `id` is a valid OTLP trace id: 16 bytes, not all zero.
pub fn is_valid_trace_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().any(|b| *b != 0)
}

/// True when `id` is a valid OTLP span id: 8 bytes, not all zero.
pub fn is_valid_span_id(id: &[u8]) -> bool {
    id.len() == 8 && id.iter().any(|b| *b != 0)
}

/// MLflow's trace id for an OTLP trace id: `tr-` + lowercase hex.
pub fn mlflow_trace_id(trace_id: &[u8]) -> String {
    let mut s = String::with_capacity(3 + trace_id.len() * 2);
    s.push_str(MLFLOW_TRACE_ID_PREFIX);
    s.push_str(&hex::encode(trace_id));
    s
}

/// The raw OTLP trace id bytes of an MLflow trace id (`tr-<hex>`), or of a bare 32-hex id.
pub fn otlp_trace_id(mlflow_id: &str) -> Option<Vec<u8>> {
    let hex_part = mlflow_id
        .strip_prefix(MLFLOW_TRACE_ID_PREFIX)
        .unwrap_or(mlflow_id);
    let bytes = hex::decode(hex_part).ok()?;
    is_valid_trace_id(&bytes).then_some(bytes)
}

/// Standard base64 of raw id bytes, as MLflow prints span and trace ids inside spans.
pub fn base64_id(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 of a hex id (as stored in the store's columns).
pub fn base64_of_hex(hex_id: &str) -> Option<String> {
    hex::decode(hex_id).ok().map(|b| base64_id(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trip() {
        let raw = hex::decode("6c84dc222e49ee3db869b84c70fe0d3b").unwrap();
        let id = mlflow_trace_id(&raw);
        assert_eq!(id, "tr-6c84dc222e49ee3db869b84c70fe0d3b");
        assert_eq!(otlp_trace_id(&id).unwrap(), raw);
        assert_eq!(otlp_trace_id("tr-00000000000000000000000000000000"), None);
        assert_eq!(otlp_trace_id("tr-zz"), None);
    }

    #[test]
    fn base64_matches_mlflow_example() {
        // MLFLOW.md §8.3: `4SBrtP2KBUo=` = hex `e1206bb4fd8a054a`.
        assert_eq!(base64_of_hex("e1206bb4fd8a054a").unwrap(), "4SBrtP2KBUo=");
    }

    #[test]
    fn validity() {
        assert!(!is_valid_trace_id(&[0; 16]));
        assert!(!is_valid_trace_id(&[1; 8]));
        assert!(is_valid_span_id(&[0, 0, 0, 0, 0, 0, 0, 1]));
        assert!(!is_valid_span_id(&[]));
    }
}
