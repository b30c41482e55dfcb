//! From request bytes to a typed OTLP export request: content-type and content-encoding parsing,
//! bounded decompression and protobuf / OTLP/JSON decoding.
//!
//! Everything here is synchronous and transport-free ([`decode_body`]: bytes in, request out), so
//! decoding can move to a blocking pool without changes. No function allocates more than the
//! configured limit (plus one byte) for a decompressed body: a decompression bomb fails with
//! [`ReceiveError::TooLarge`] after inflating at most `limit + 1` bytes.

use std::io::Read;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{Oversize, ReceiveError};

/// Wire format of an OTLP/HTTP body, selected by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf` (binary protobuf).
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Format {
    /// The `Content-Type` used for responses in this format (mirrors the request).
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    /// The format of a `Content-Type` header value; parameters such as `charset` are ignored and
    /// the media type is matched case-insensitively (like Go's `mime.ParseMediaType`).
    pub fn from_content_type(value: Option<&[u8]>) -> Result<Self, ReceiveError> {
        let raw = value.unwrap_or_default();
        let unsupported = || ReceiveError::UnsupportedMediaType {
            found: String::from_utf8_lossy(raw).into_owned(),
        };
        let text = std::str::from_utf8(raw).map_err(|_| unsupported())?;
        let essence = text.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Self::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else {
            Err(unsupported())
        }
    }
}

/// A content coding tracebridge can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` / `x-gzip` (also multi-member streams).
    Gzip,
    /// `zstd`.
    Zstd,
    /// `deflate`: zlib-wrapped per RFC 9110, raw deflate accepted too.
    Deflate,
}

impl Encoding {
    /// The coding's name as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Deflate => "deflate",
        }
    }

    /// The codings of a `Content-Encoding` header value, in the order they were applied.
    /// `identity` and a missing header yield no coding.
    pub fn parse_header(value: Option<&[u8]>) -> Result<Vec<Self>, ReceiveError> {
        let Some(raw) = value else {
            return Ok(Vec::new());
        };
        let unsupported = || ReceiveError::UnsupportedEncoding {
            found: String::from_utf8_lossy(raw).into_owned(),
        };
        let text = std::str::from_utf8(raw).map_err(|_| unsupported())?;
        let mut codings = Vec::new();
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let coding = if token.eq_ignore_ascii_case("identity") {
                continue;
            } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                Self::Gzip
            } else if token.eq_ignore_ascii_case("zstd") {
                Self::Zstd
            } else if token.eq_ignore_ascii_case("deflate") {
                Self::Deflate
            } else {
                return Err(unsupported());
            };
            codings.push(coding);
        }
        Ok(codings)
    }
}

/// Decompress (if needed) and decode one OTLP request body. `limit` bounds the decompressed size.
pub fn decode_body<M>(
    body: Bytes,
    encodings: &[Encoding],
    format: Format,
    limit: usize,
    request_type: &'static str,
) -> Result<M, ReceiveError>
where
    M: prost::Message + Default + DeserializeOwned,
{
    let plain = decompress(body, encodings, limit)?;
    decode_message(&plain, format, request_type)
}

/// Decode an uncompressed body. An empty body is an empty request in both formats.
pub fn decode_message<M>(
    body: &[u8],
    format: Format,
    request_type: &'static str,
) -> Result<M, ReceiveError>
where
    M: prost::Message + Default + DeserializeOwned,
{
    if body.is_empty() {
        return Ok(M::default());
    }
    match format {
        Format::Protobuf => M::decode(body).map_err(|source| ReceiveError::Protobuf {
            request_type,
            source,
        }),
        Format::Json => serde_json::from_slice(body).map_err(|source| ReceiveError::Json {
            request_type,
            source,
        }),
    }
}

/// Remove the content codings (last applied first), each output bounded by `limit` bytes.
pub fn decompress(
    body: Bytes,
    encodings: &[Encoding],
    limit: usize,
) -> Result<Bytes, ReceiveError> {
    let mut data = body;
    for &encoding in encodings.iter().rev() {
        data = Bytes::from(inflate(encoding, &data, limit)?);
    }
    Ok(data)
}

/// Decompress one coding, refusing to produce more than `limit` bytes.
fn inflate(encoding: Encoding, input: &[u8], limit: usize) -> Result<Vec<u8>, ReceiveError> {
    let name = encoding.name();
    let invalid = |source| ReceiveError::Decompress {
        encoding: name,
        source,
    };
    let result = match encoding {
        Encoding::Gzip => {
            read_bounded(flate2::read::MultiGzDecoder::new(input), limit, input.len())
        }
        Encoding::Deflate if looks_like_zlib(input) => {
            read_bounded(flate2::read::ZlibDecoder::new(input), limit, input.len())
        }
        Encoding::Deflate => {
            read_bounded(flate2::read::DeflateDecoder::new(input), limit, input.len())
        }
        Encoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(input).map_err(invalid)?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(invalid)?;
            read_bounded(decoder, limit, input.len())
        }
    };
    result.map_err(|e| match e {
        BoundedReadError::TooLarge => ReceiveError::TooLarge {
            limit,
            what: Oversize::Decompressed(name),
        },
        BoundedReadError::Io(source) => invalid(source),
    })
}

/// True when `input` starts with a valid zlib header (RFC 1950: CM = 8, header checksum).
fn looks_like_zlib(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Largest zstd window accepted: enough for any frame whose content fits the limit, and never
/// below zstd's 8 MiB default so streams from ordinary encoders decode under small limits.
fn zstd_window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(23, 31)
}

/// Why [`read_bounded`] stopped.
#[derive(Debug)]
pub(crate) enum BoundedReadError {
    /// The reader produced more than the limit.
    TooLarge,
    /// The reader failed (corrupt input).
    Io(std::io::Error),
}

/// Read everything from `reader` into a buffer whose capacity never exceeds `limit` bytes; more
/// than `limit` bytes of output is [`BoundedReadError::TooLarge`]. `input_len` sizes the first
/// allocation (decompressed data is usually a few times larger than its input).
pub(crate) fn read_bounded(
    mut reader: impl Read,
    limit: usize,
    input_len: usize,
) -> Result<Vec<u8>, BoundedReadError> {
    let mut out = BoundedBuf::with_hint(limit, input_len.saturating_mul(4));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out.into_vec()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BoundedReadError::Io(e)),
        };
        out.extend(&chunk[..n])
            .map_err(|LimitExceeded| BoundedReadError::TooLarge)?;
    }
}

/// Appending to a [`BoundedBuf`] would exceed its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitExceeded;

/// A byte buffer that refuses to grow beyond a limit, and whose capacity never exceeds it
/// (growth doubles like `Vec`, but is clamped to the limit).
#[derive(Debug)]
pub(crate) struct BoundedBuf {
    buf: Vec<u8>,
    limit: usize,
}

impl BoundedBuf {
    /// An empty buffer; `hint` (clamped to the limit) is allocated up front.
    pub(crate) fn with_hint(limit: usize, hint: usize) -> Self {
        Self {
            buf: Vec::with_capacity(hint.min(limit)),
            limit,
        }
    }

    /// Append `data`, or fail without appending if the result would exceed the limit.
    pub(crate) fn extend(&mut self, data: &[u8]) -> Result<(), LimitExceeded> {
        let needed = self.buf.len() + data.len();
        if needed > self.limit {
            return Err(LimitExceeded);
        }
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity() * 2).min(self.limit);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes collected so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The collected bytes.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::test_support::{
        deflate_raw, gzip, gzip_bomb, span, trace_request, zlib, zstd,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;

    const TRACE: &str = "ExportTraceServiceRequest";
    const MIB: usize = 1024 * 1024;

    fn decode_traces(
        body: &[u8],
        encodings: &[Encoding],
        format: Format,
        limit: usize,
    ) -> Result<ExportTraceServiceRequest, ReceiveError> {
        decode_body(
            Bytes::copy_from_slice(body),
            encodings,
            format,
            limit,
            TRACE,
        )
    }

    #[test]
    fn content_types() {
        let cases: &[(Option<&str>, Option<Format>)] = &[
            (Some("application/x-protobuf"), Some(Format::Protobuf)),
            (Some("application/protobuf"), Some(Format::Protobuf)),
            (Some("Application/X-Protobuf"), Some(Format::Protobuf)),
            (Some("application/json"), Some(Format::Json)),
            (Some("application/json; charset=utf-8"), Some(Format::Json)),
            (Some("APPLICATION/JSON ;charset=UTF-8"), Some(Format::Json)),
            (Some("text/plain"), None),
            (Some("application/grpc"), None),
            (Some("application/jsonl"), None),
            (Some(""), None),
            (None, None),
        ];
        for (header, expected) in cases {
            let got = Format::from_content_type(header.map(str::as_bytes));
            match (expected, got) {
                (Some(f), Ok(g)) => assert_eq!(*f, g, "{header:?}"),
                (None, Err(ReceiveError::UnsupportedMediaType { found })) => {
                    assert_eq!(found, header.unwrap_or_default())
                }
                (e, g) => panic!("{header:?}: expected {e:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn content_encodings() {
        use Encoding::*;
        let cases: &[(Option<&str>, Option<Vec<Encoding>>)] = &[
            (None, Some(vec![])),
            (Some("identity"), Some(vec![])),
            (Some("gzip"), Some(vec![Gzip])),
            (Some("GZIP"), Some(vec![Gzip])),
            (Some("x-gzip"), Some(vec![Gzip])),
            (Some("zstd"), Some(vec![Zstd])),
            (Some("deflate"), Some(vec![Deflate])),
            (Some("deflate, gzip"), Some(vec![Deflate, Gzip])),
            (Some("br"), None),
            (Some("snappy"), None),
        ];
        for (header, expected) in cases {
            let got = Encoding::parse_header(header.map(str::as_bytes));
            match (expected, got) {
                (Some(e), Ok(g)) => assert_eq!(e, &g, "{header:?}"),
                (None, Err(ReceiveError::UnsupportedEncoding { found })) => {
                    assert_eq!(Some(found.as_str()), *header)
                }
                (e, g) => panic!("{header:?}: expected {e:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn protobuf_round_trip_with_every_encoding() {
        let req = trace_request(vec![span(&[0xab; 16], &[0xcd; 8], &[])]);
        let pb = req.encode_to_vec();
        let cases: Vec<(&str, Vec<u8>, Vec<Encoding>)> = vec![
            ("identity", pb.clone(), vec![]),
            ("gzip", gzip(&pb), vec![Encoding::Gzip]),
            ("zstd", zstd(&pb), vec![Encoding::Zstd]),
            ("deflate (zlib)", zlib(&pb), vec![Encoding::Deflate]),
            ("deflate (raw)", deflate_raw(&pb), vec![Encoding::Deflate]),
            (
                "zstd then gzip",
                gzip(&zstd(&pb)),
                vec![Encoding::Zstd, Encoding::Gzip],
            ),
        ];
        for (name, body, encodings) in cases {
            let got = decode_traces(&body, &encodings, Format::Protobuf, MIB)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, req, "{name}");
        }
    }

    #[test]
    fn otlp_json_rules() {
        // OTLP.md §3: hex ids in any case, int64 as string or number, integer enums, unknown
        // fields ignored.
        let json = r#"{
          "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "unknownTopLevelField": {"nested": [1, 2, 3]},
            "scopeSpans": [{
              "scope": {"name": "lib"},
              "spans": [
                {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                 "name": "upper", "kind": 2, "startTimeUnixNano": "1544712660000000000",
                 "endTimeUnixNano": 1544712661000000000, "someFutureField": true,
                 "attributes": [{"key": "n", "value": {"intValue": "42"}},
                                {"key": "m", "value": {"intValue": 7}}]},
                {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175",
                 "parentSpanId": "eee19b7ec3c1b174", "name": "lower", "kind": 1}
              ]
            }]
          }]
        }"#;
        let req = decode_traces(json.as_bytes(), &[], Format::Json, MIB).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        let trace_id = hex::decode("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(spans[0].trace_id, trace_id);
        assert_eq!(spans[1].trace_id, trace_id);
        assert_eq!(spans[0].span_id, hex::decode("eee19b7ec3c1b174").unwrap());
        assert_eq!(spans[1].parent_span_id, spans[0].span_id);
        assert_eq!(spans[0].kind, SpanKind::Server as i32);
        assert_eq!(spans[0].start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(spans[0].end_time_unix_nano, 1_544_712_661_000_000_000);
        let ints: Vec<_> = spans[0]
            .attributes
            .iter()
            .map(|kv| kv.value.clone().unwrap().value.unwrap())
            .collect();
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        assert_eq!(ints, vec![Value::IntValue(42), Value::IntValue(7)]);
    }

    #[test]
    fn json_with_gzip_and_logs() {
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"timeUnixNano":"1","severityNumber":9,"body":{"stringValue":"hi"},
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;
        let req: ExportLogsServiceRequest = decode_body(
            Bytes::from(gzip(json)),
            &[Encoding::Gzip],
            Format::Json,
            MIB,
            "ExportLogsServiceRequest",
        )
        .unwrap();
        let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.severity_number, 9);
        assert_eq!(rec.span_id, hex::decode("eee19b7ec3c1b174").unwrap());
    }

    #[test]
    fn empty_bodies_are_empty_requests() {
        for (body, format) in [
            (&b""[..], Format::Protobuf),
            (&b""[..], Format::Json),
            (&b"{}"[..], Format::Json),
            (&br#"{"resourceSpans":[]}"#[..], Format::Json),
        ] {
            let req = decode_traces(body, &[], format, MIB).unwrap();
            assert!(req.resource_spans.is_empty(), "{body:?}");
        }
    }

    #[test]
    fn undecodable_bodies_name_the_problem() {
        let pb = trace_request(vec![span(&[1; 16], &[2; 8], &[])]).encode_to_vec();
        let truncated = &pb[..pb.len() - 3];
        // (name, body, encodings, format, expected message prefix)
        type Case = (&'static str, Vec<u8>, Vec<Encoding>, Format, &'static str);
        let cases: Vec<Case> = vec![
            (
                "truncated protobuf",
                truncated.to_vec(),
                vec![],
                Format::Protobuf,
                "invalid protobuf ExportTraceServiceRequest: ",
            ),
            (
                "JSON sent as protobuf",
                b"{\"resourceSpans\":[]}".to_vec(),
                vec![],
                Format::Protobuf,
                "invalid protobuf ExportTraceServiceRequest: ",
            ),
            (
                "invalid JSON",
                b"{\"resourceSpans\": [".to_vec(),
                vec![],
                Format::Json,
                "invalid OTLP/JSON at line 1 column 19: EOF while parsing",
            ),
            (
                "enum name",
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_CLIENT"}]}]}]}"#
                    .to_vec(),
                vec![],
                Format::Json,
                "invalid OTLP/JSON at line 1 column 69: invalid type: string \"SPAN_KIND_CLIENT\"",
            ),
            (
                "base64 id",
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#
                    .to_vec(),
                vec![],
                Format::Json,
                "invalid OTLP/JSON at line 1 column ",
            ),
            (
                "snake_case is not OTLP/JSON, but ignored as unknown",
                br#"{"resource_spans":[{"scope_spans":[{"spans":[{}]}]}]}"#.to_vec(),
                vec![],
                Format::Json,
                "",
            ),
            (
                "not gzip",
                pb.clone(),
                vec![Encoding::Gzip],
                Format::Protobuf,
                "invalid gzip body: ",
            ),
            (
                "truncated gzip",
                gzip(&pb)[..10].to_vec(),
                vec![Encoding::Gzip],
                Format::Protobuf,
                "invalid gzip body: ",
            ),
            (
                "not zstd",
                pb.clone(),
                vec![Encoding::Zstd],
                Format::Protobuf,
                "invalid zstd body: ",
            ),
            (
                "not deflate",
                vec![0xff; 32],
                vec![Encoding::Deflate],
                Format::Protobuf,
                "invalid deflate body: ",
            ),
        ];
        for (name, body, encodings, format, prefix) in cases {
            match decode_traces(&body, &encodings, format, MIB) {
                Ok(req) if prefix.is_empty() => {
                    assert!(req.resource_spans.is_empty(), "{name}")
                }
                Ok(req) => panic!("{name}: decoded {req:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        !prefix.is_empty() && msg.starts_with(prefix),
                        "{name}: {msg:?} does not start with {prefix:?}"
                    );
                    assert_eq!(
                        crate::receivers::classify(&e).http_status.as_u16(),
                        400,
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn size_limit_applies_after_decompression() {
        let pb = trace_request(vec![span(&[1; 16], &[2; 8], &[])]).encode_to_vec();
        let limit = pb.len() - 1;
        for (encodings, body) in [
            (vec![Encoding::Gzip], gzip(&pb)),
            (vec![Encoding::Zstd], zstd(&pb)),
            (vec![Encoding::Deflate], zlib(&pb)),
        ] {
            assert!(body.len() <= limit + 40);
            match decode_traces(&body, &encodings, Format::Protobuf, limit) {
                Err(ReceiveError::TooLarge {
                    limit: l,
                    what: Oversize::Decompressed(name),
                }) => {
                    assert_eq!(l, limit);
                    assert_eq!(name, encodings[0].name());
                }
                other => panic!("{encodings:?}: {other:?}"),
            }
            // Exactly at the limit is fine.
            decode_traces(&body, &encodings, Format::Protobuf, pb.len()).unwrap();
        }
    }

    #[test]
    fn gzip_bomb_is_refused_without_inflating_it() {
        let bomb = gzip_bomb();
        assert!(bomb.len() < 2 * MIB, "bomb is {} bytes", bomb.len());
        let limit = 4 * MIB;
        let started = std::time::Instant::now();
        let err = decompress(Bytes::from(bomb), &[Encoding::Gzip], limit).unwrap_err();
        assert!(
            matches!(
                err,
                ReceiveError::TooLarge {
                    limit: l,
                    what: Oversize::Decompressed("gzip")
                } if l == limit
            ),
            "{err:?}"
        );
        assert_eq!(crate::receivers::classify(&err).http_status.as_u16(), 413);
        // Inflating the whole GiB would take far longer than inflating 4 MiB.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn bounded_read_never_allocates_past_the_limit() {
        // A reader producing endless zeros: the buffer must stop at the limit.
        let limit = 3 * MIB + 17;
        let err = read_bounded(std::io::repeat(0), limit, 10).unwrap_err();
        assert!(matches!(err, BoundedReadError::TooLarge));

        let mut buf = BoundedBuf::with_hint(limit, usize::MAX);
        assert_eq!(buf.capacity(), limit);
        let mut buf2 = BoundedBuf::with_hint(limit, 1);
        let chunk = vec![7u8; 1000];
        while buf2.extend(&chunk).is_ok() {
            assert!(buf2.capacity() <= limit);
        }
        assert!(buf2.len() <= limit && buf2.len() + 1000 > limit);
        assert!(buf.extend(&vec![0u8; limit + 1]).is_err());
        assert_eq!(buf.len(), 0);
        // Exactly `limit` bytes are accepted.
        let ok = read_bounded(std::io::repeat(1).take(limit as u64), limit, 0).unwrap();
        assert_eq!(ok.len(), limit);
        assert!(ok.capacity() <= limit);
    }

    #[test]
    fn zstd_window_bounds() {
        assert_eq!(zstd_window_log_max(1024), 23);
        assert_eq!(zstd_window_log_max(64 * MIB), 26);
        assert_eq!(zstd_window_log_max(64 * MIB + 1), 27);
        assert_eq!(zstd_window_log_max(usize::MAX), 31);
    }
}
