//! The one path from a decoded export request to the pipeline and back, shared by both
//! transports: pick the experiment, validate items, submit, and report partial success.

use super::error::ReceiveError;
use super::signal::Signal;
use super::validate::PartialSuccess;
use crate::pipeline::{ExportBatch, Pipeline};

/// The experiment a request belongs to: the `x-mlflow-experiment-id` value (trimmed), or
/// `default` when it is absent or blank.
pub(crate) fn experiment_id(header: Option<&[u8]>, default: &str) -> Result<String, ReceiveError> {
    let Some(raw) = header else {
        return Ok(default.to_owned());
    };
    let text = std::str::from_utf8(raw).map_err(|_| ReceiveError::InvalidExperimentId {
        reason: "not valid UTF-8",
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(default.to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err(ReceiveError::InvalidExperimentId {
            reason: "contains control characters",
        });
    }
    Ok(text.to_owned())
}

/// Validate `request`, hand what remains to the pipeline and wait for the commit.
///
/// Returns the partial success to report (`None` when every item was accepted). A request with
/// no valid item succeeds without touching the pipeline.
pub(crate) async fn export<S: Signal>(
    pipeline: &Pipeline,
    experiment_id: String,
    mut request: S::Request,
    transport: &'static str,
) -> Result<Option<PartialSuccess>, ReceiveError> {
    let received = S::item_count(&request);
    let rejections = S::validate(&mut request);
    let rejected = rejections.total();
    let accepted = received - rejected;
    tracing::debug!(
        signal = S::NAME,
        transport,
        experiment_id = %experiment_id,
        received,
        accepted,
        rejected,
        "OTLP export request"
    );
    if accepted > 0 {
        pipeline
            .submit(ExportBatch {
                experiment_id,
                payload: S::into_payload(request),
            })
            .await?;
    }
    Ok(rejections.partial_success(S::ITEM, S::ITEMS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_id_table() {
        type Case = (Option<&'static [u8]>, Result<&'static str, &'static str>);
        let cases: &[Case] = &[
            (None, Ok("0")),
            (Some(b""), Ok("0")),
            (Some(b"  "), Ok("0")),
            (Some(b"42"), Ok("42")),
            (Some(b" 42 "), Ok("42")),
            (
                Some(b"exp-\xff"),
                Err("invalid x-mlflow-experiment-id: not valid UTF-8"),
            ),
            (
                Some(b"a\tb"),
                Err("invalid x-mlflow-experiment-id: contains control characters"),
            ),
        ];
        for (header, expected) in cases {
            let got = experiment_id(*header, "0").map_err(|e| e.to_string());
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                *expected,
                "{header:?}"
            );
        }
    }
}
