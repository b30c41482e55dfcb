//! The filter-string parser: MLflow's trace search grammar (clauses joined by `AND`) to an AST.
//!
//! This stage is syntactic: it splits keys into an entity and a key and reads comparators and
//! literal values. Whether a field accepts a comparator or a value is checked in [`super::sql`].

use super::QueryError;

/// The entity a filter key refers to, with the key inside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// A trace attribute (`trace.`, `attributes.`, `attribute.` or no prefix), e.g. `timestamp_ms`.
    Attribute(String),
    /// Trace metadata (`metadata.` / `request_metadata.`).
    Metadata(String),
    /// A trace tag (`tag.` / `tags.`).
    Tag(String),
    /// A span field (`span.name`, `span.type`, `span.status`, `span.content`).
    Span(String),
    /// A span attribute (`span.attributes.<k>` / `span.attribute.<k>`).
    SpanAttribute(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE` (case-sensitive)
    Like,
    /// `ILIKE` (case-insensitive)
    ILike,
    /// `IN (…)`
    In,
    /// `NOT IN (…)`
    NotIn,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

impl Comparator {
    /// The comparator as written in MLflow's grammar.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "!=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Like => "LIKE",
            Comparator::ILike => "ILIKE",
            Comparator::In => "IN",
            Comparator::NotIn => "NOT IN",
            Comparator::IsNull => "IS NULL",
            Comparator::IsNotNull => "IS NOT NULL",
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string, unescaped.
    Str(String),
    /// An integer.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
}

/// The right-hand side of a clause; its shape follows the comparator.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `IS NULL` / `IS NOT NULL` take no value.
    None,
    /// Every other comparator but `IN` takes one value.
    Scalar(Literal),
    /// `IN` / `NOT IN` take a non-empty parenthesised list.
    List(Vec<Literal>),
}

/// One `key comparator value` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// What is compared.
    pub key: Key,
    /// How it is compared.
    pub comparator: Comparator,
    /// What it is compared with.
    pub operand: Operand,
}

/// Parse a filter string into its `AND`-joined clauses (none for an empty or blank string).
pub fn parse_filter(input: &str) -> Result<Vec<Clause>, QueryError> {
    let mut p = Parser::new(input);
    let mut clauses = Vec::new();
    p.skip_ws();
    if p.at_end() {
        return Ok(clauses);
    }
    loop {
        clauses.push(p.clause()?);
        p.skip_ws();
        if p.at_end() {
            return Ok(clauses);
        }
        let start = p.pos;
        let word = p.word();
        if word.eq_ignore_ascii_case("and") {
            p.skip_ws();
            if p.at_end() {
                return Err(p.error(p.pos, "expected a clause after AND"));
            }
        } else if word.eq_ignore_ascii_case("or") {
            return Err(QueryError::Unsupported(
                "Invalid clause(s) in filter string: 'OR' (OR is not supported; join clauses with AND)"
                    .into(),
            ));
        } else {
            return Err(p.error(start, "expected AND or the end of the filter string"));
        }
    }
}

/// Parse a key such as ``metadata.`mlflow.trace.session` `` at the start of `input`, returning it
/// with the number of characters it took (for order-by clauses).
pub(crate) fn parse_key_prefix(input: &str) -> Result<(Key, usize), QueryError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    let key = p.key()?;
    Ok((key, p.pos))
}

/// One part of a dotted key; `quoted` when written in backticks or double quotes.
struct Part {
    text: String,
    quoted: bool,
}

/// A cursor over the filter string's characters; positions are character offsets.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(input: &str) -> Self {
        Parser {
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn error(&self, position: usize, message: impl Into<String>) -> QueryError {
        QueryError::Syntax {
            position,
            message: message.into(),
        }
    }

    /// What is at `pos`, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(_) => {
                let rest: String = self.chars[self.pos..].iter().take(20).collect();
                format!("{rest:?}")
            }
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// A run of letters, digits and underscores (empty when there is none).
    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn clause(&mut self) -> Result<Clause, QueryError> {
        if self.peek() == Some('(') {
            return Err(QueryError::Unsupported(
                "parentheses are not supported in filter strings; join clauses with AND".into(),
            ));
        }
        let key = self.key()?;
        self.skip_ws();
        let comparator = self.comparator()?;
        self.skip_ws();
        let operand = match comparator {
            Comparator::IsNull | Comparator::IsNotNull => Operand::None,
            Comparator::In | Comparator::NotIn => Operand::List(self.list()?),
            _ => Operand::Scalar(self.scalar()?),
        };
        Ok(Clause {
            key,
            comparator,
            operand,
        })
    }

    /// A dotted key, classified by its first part.
    fn key(&mut self) -> Result<Key, QueryError> {
        let start = self.pos;
        let mut parts = vec![self.key_part()?];
        while self.peek() == Some('.') {
            self.pos += 1;
            parts.push(self.key_part()?);
        }
        classify(parts, start)
    }

    fn key_part(&mut self) -> Result<Part, QueryError> {
        let start = self.pos;
        let part = match self.peek() {
            Some(q @ ('`' | '"')) => Part {
                text: self.quoted(q)?,
                quoted: true,
            },
            Some(c) if c.is_alphanumeric() || c == '_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    self.pos += 1;
                }
                Part {
                    text: self.chars[start..self.pos].iter().collect(),
                    quoted: false,
                }
            }
            _ => return Err(self.error(start, format!("expected a key, found {}", self.found()))),
        };
        if part.text.is_empty() {
            return Err(self.error(start, "empty key"));
        }
        Ok(part)
    }

    /// A string in `quote`s; a doubled quote or a backslash escapes the quote, `\\` is a
    /// backslash, any other backslash is kept as is.
    fn quoted(&mut self, quote: char) -> Result<String, QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error(start, "unterminated string literal")),
                Some('\\') => match self.chars.get(self.pos + 1).copied() {
                    Some(c) if c == quote || c == '\\' => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) if c == quote => {
                    if self.chars.get(self.pos + 1) == Some(&quote) {
                        out.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(out);
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn comparator(&mut self) -> Result<Comparator, QueryError> {
        let start = self.pos;
        let rest = &self.chars[self.pos..];
        for (sym, cmp) in [
            ("<=", Comparator::Le),
            (">=", Comparator::Ge),
            ("!=", Comparator::Ne),
            ("<>", Comparator::Ne),
            ("=", Comparator::Eq),
            ("<", Comparator::Lt),
            (">", Comparator::Gt),
        ] {
            if rest.iter().copied().take(sym.len()).eq(sym.chars()) {
                self.pos += sym.len();
                return Ok(cmp);
            }
        }
        let word = self.word().to_ascii_uppercase();
        match word.as_str() {
            "LIKE" => Ok(Comparator::Like),
            "ILIKE" => Ok(Comparator::ILike),
            "RLIKE" => Err(QueryError::Unsupported(
                "RLIKE (regular expression match) is not supported: SQLite has no regex; \
                 use LIKE or ILIKE"
                    .into(),
            )),
            "IN" => Ok(Comparator::In),
            "NOT" => {
                self.skip_ws();
                let at = self.pos;
                if self.word().eq_ignore_ascii_case("in") {
                    Ok(Comparator::NotIn)
                } else {
                    self.pos = at;
                    Err(self.error(at, format!("expected IN after NOT, found {}", self.found())))
                }
            }
            "IS" => {
                self.skip_ws();
                let at = self.pos;
                let next = self.word().to_ascii_uppercase();
                let negated = next == "NOT";
                if negated {
                    self.skip_ws();
                }
                let at_null = self.pos;
                let null = if negated {
                    self.word().to_ascii_uppercase()
                } else {
                    next
                };
                match (null.as_str(), negated) {
                    ("NULL", false) => Ok(Comparator::IsNull),
                    ("NULL", true) => Ok(Comparator::IsNotNull),
                    _ => {
                        self.pos = if negated { at_null } else { at };
                        Err(self.error(
                            self.pos,
                            format!("expected NULL or NOT NULL after IS, found {}", self.found()),
                        ))
                    }
                }
            }
            _ => {
                self.pos = start;
                Err(self.error(
                    start,
                    format!(
                        "expected a comparator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, \
                         IS NULL, IS NOT NULL), found {}",
                        self.found()
                    ),
                ))
            }
        }
    }

    /// A quoted string or a number.
    fn scalar(&mut self) -> Result<Literal, QueryError> {
        let start = self.pos;
        match self.peek() {
            Some(q @ ('\'' | '"')) => Ok(Literal::Str(self.quoted(q)?)),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            Some('(') => Err(self.error(
                start,
                "a parenthesised list is only allowed after IN or NOT IN",
            )),
            Some(c) if c.is_alphabetic() || c == '_' || c == '`' => {
                let word = self.word();
                self.pos = start;
                if word.eq_ignore_ascii_case("null") {
                    Err(self.error(start, "compare with NULL using IS NULL or IS NOT NULL"))
                } else {
                    Err(self.error(
                        start,
                        format!(
                            "expected a value, found {}; quote string values",
                            self.found()
                        ),
                    ))
                }
            }
            _ => Err(self.error(start, format!("expected a value, found {}", self.found()))),
        }
    }

    fn number(&mut self) -> Result<Literal, QueryError> {
        let start = self.pos;
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        let digits = |p: &mut Parser| {
            let s = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - s
        };
        let mut count = digits(self);
        let mut fractional = false;
        if self.peek() == Some('.') {
            self.pos += 1;
            fractional = true;
            count += digits(self);
        }
        if count > 0 && matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('-' | '+')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = save;
            } else {
                fractional = true;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let bad = || QueryError::Syntax {
            position: start,
            message: format!("invalid number {text:?}"),
        };
        if count == 0
            || self
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return Err(bad());
        }
        if !fractional {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Literal::Int(i));
            }
        }
        text.parse::<f64>().map(Literal::Float).map_err(|_| bad())
    }

    /// `( value [, value]* )`
    fn list(&mut self) -> Result<Vec<Literal>, QueryError> {
        if self.peek() != Some('(') {
            return Err(self.error(
                self.pos,
                format!(
                    "expected a parenthesised list after IN, found {}",
                    self.found()
                ),
            ));
        }
        let open = self.pos;
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(')') && values.is_empty() {
                return Err(self.error(open, "empty IN list"));
            }
            values.push(self.scalar()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                None => return Err(self.error(open, "unterminated IN list: expected ')'")),
                Some(_) => {
                    return Err(self.error(
                        self.pos,
                        format!("expected ',' or ')' in IN list, found {}", self.found()),
                    ))
                }
            }
        }
    }
}

/// Sort a dotted key into its entity: the first part names the entity (trace attributes may
/// omit it); for metadata, tags and span attributes everything after the prefix is the key.
/// `start` is the key's position, for errors.
fn classify(parts: Vec<Part>, start: usize) -> Result<Key, QueryError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Err(QueryError::Syntax {
            position: start,
            message: "expected a key".into(),
        });
    };
    let rest: Vec<Part> = parts.collect();
    if rest.is_empty() {
        return Ok(Key::Attribute(first.text));
    }
    let join = |parts: &[Part]| {
        parts
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(".")
    };
    let entity = first.text.to_ascii_lowercase();
    match entity.as_str() {
        "trace" | "attributes" | "attribute" => Ok(Key::Attribute(join(&rest))),
        "metadata" | "request_metadata" => Ok(Key::Metadata(join(&rest))),
        "tag" | "tags" => Ok(Key::Tag(join(&rest))),
        "span" => {
            let field = &rest[0];
            let is_attrs = !field.quoted
                && matches!(
                    field.text.to_ascii_lowercase().as_str(),
                    "attributes" | "attribute"
                );
            match (is_attrs, rest.len()) {
                (true, 1) => Err(QueryError::Syntax {
                    position: start,
                    message: format!("expected an attribute key after span.{}", field.text),
                }),
                (true, _) => Ok(Key::SpanAttribute(join(&rest[1..]))),
                (false, _) => Ok(Key::Span(join(&rest))),
            }
        }
        "feedback" | "expectation" | "assessment" | "assessments" | "issue" => {
            Err(QueryError::Unsupported(format!(
                "filtering on {:?} is not supported: tracebridge stores no assessments or issues",
                first.text
            )))
        }
        _ => Err(QueryError::Unsupported(format!(
            "unknown entity {:?} (expected trace, attributes, metadata, request_metadata, tag, \
             tags or span)",
            first.text
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Comparator::*;

    fn s(v: &str) -> Literal {
        Literal::Str(v.into())
    }

    fn c(key: Key, comparator: Comparator, operand: Operand) -> Clause {
        Clause {
            key,
            comparator,
            operand,
        }
    }

    fn attr(k: &str) -> Key {
        Key::Attribute(k.into())
    }

    fn meta(k: &str) -> Key {
        Key::Metadata(k.into())
    }

    fn scalar(l: Literal) -> Operand {
        Operand::Scalar(l)
    }

    #[test]
    fn parses() {
        let session = "mlflow.trace.session";
        let rows: Vec<(&str, Vec<Clause>)> = vec![
            ("", vec![]),
            ("   \t\n ", vec![]),
            (
                "status = 'OK'",
                vec![c(attr("status"), Eq, scalar(s("OK")))],
            ),
            ("status='OK'", vec![c(attr("status"), Eq, scalar(s("OK")))]),
            (
                "trace.status = \"OK\"",
                vec![c(attr("status"), Eq, scalar(s("OK")))],
            ),
            (
                "attributes.timestamp_ms > 5",
                vec![c(attr("timestamp_ms"), Gt, scalar(Literal::Int(5)))],
            ),
            (
                "attribute.timestamp_ms>=-5",
                vec![c(attr("timestamp_ms"), Ge, scalar(Literal::Int(-5)))],
            ),
            (
                "execution_time_ms < 2.5",
                vec![c(
                    attr("execution_time_ms"),
                    Lt,
                    scalar(Literal::Float(2.5)),
                )],
            ),
            (
                "execution_time_ms <= 1e3",
                vec![c(
                    attr("execution_time_ms"),
                    Le,
                    scalar(Literal::Float(1000.0)),
                )],
            ),
            ("name != 'x'", vec![c(attr("name"), Ne, scalar(s("x")))]),
            ("name <> 'x'", vec![c(attr("name"), Ne, scalar(s("x")))]),
            (
                "`timestamp_ms` = 1",
                vec![c(attr("timestamp_ms"), Eq, scalar(Literal::Int(1)))],
            ),
            // Backticked, double-quoted and bare dotted keys.
            (
                "metadata.`mlflow.trace.session` = 'S'",
                vec![c(meta(session), Eq, scalar(s("S")))],
            ),
            (
                "request_metadata.\"mlflow.trace.session\" = 'S'",
                vec![c(meta(session), Eq, scalar(s("S")))],
            ),
            (
                "request_metadata.mlflow.trace.session = 'S'",
                vec![c(meta(session), Eq, scalar(s("S")))],
            ),
            (
                "metadata.`weird key` = 'v'",
                vec![c(meta("weird key"), Eq, scalar(s("v")))],
            ),
            (
                "metadata.`a``b` = 'v'",
                vec![c(meta("a`b"), Eq, scalar(s("v")))],
            ),
            (
                "metadata.\"a\\\"b\" = 'v'",
                vec![c(meta("a\"b"), Eq, scalar(s("v")))],
            ),
            (
                "tags.my-team = 'v'",
                vec![c(Key::Tag("my-team".into()), Eq, scalar(s("v")))],
            ),
            (
                "tag.`mlflow.traceName` = 'v'",
                vec![c(Key::Tag("mlflow.traceName".into()), Eq, scalar(s("v")))],
            ),
            (
                "span.name = 'llm'",
                vec![c(Key::Span("name".into()), Eq, scalar(s("llm")))],
            ),
            (
                "span.type IN ('LLM', \"CHAT_MODEL\")",
                vec![c(
                    Key::Span("type".into()),
                    In,
                    Operand::List(vec![s("LLM"), s("CHAT_MODEL")]),
                )],
            ),
            (
                "span.attributes.`gen_ai.request.model` = 'gpt-4o'",
                vec![c(
                    Key::SpanAttribute("gen_ai.request.model".into()),
                    Eq,
                    scalar(s("gpt-4o")),
                )],
            ),
            (
                "span.attribute.gen_ai.usage.input_tokens > 10",
                vec![c(
                    Key::SpanAttribute("gen_ai.usage.input_tokens".into()),
                    Gt,
                    scalar(Literal::Int(10)),
                )],
            ),
            (
                "span.`attributes` = 'x'",
                vec![c(Key::Span("attributes".into()), Eq, scalar(s("x")))],
            ),
            // Escapes in values.
            (
                r"name = 'it\'s'",
                vec![c(attr("name"), Eq, scalar(s("it's")))],
            ),
            (
                "name = 'it''s'",
                vec![c(attr("name"), Eq, scalar(s("it's")))],
            ),
            (
                r#"name = "say \"hi\"""#,
                vec![c(attr("name"), Eq, scalar(s("say \"hi\"")))],
            ),
            (
                r#"name = "say ""hi""""#,
                vec![c(attr("name"), Eq, scalar(s("say \"hi\"")))],
            ),
            (
                r"name = 'a\\b'",
                vec![c(attr("name"), Eq, scalar(s(r"a\b")))],
            ),
            (
                r"name = 'C:\path'",
                vec![c(attr("name"), Eq, scalar(s(r"C:\path")))],
            ),
            (
                "name = 'héllo wörld'",
                vec![c(attr("name"), Eq, scalar(s("héllo wörld")))],
            ),
            // Lists, NULL tests, case-insensitive keywords, whitespace.
            (
                "status in ('OK','ERROR')",
                vec![c(
                    attr("status"),
                    In,
                    Operand::List(vec![s("OK"), s("ERROR")]),
                )],
            ),
            (
                "status NOT IN ( 'OK' , 'ERROR' )",
                vec![c(
                    attr("status"),
                    NotIn,
                    Operand::List(vec![s("OK"), s("ERROR")]),
                )],
            ),
            (
                "status not\tin('OK')",
                vec![c(attr("status"), NotIn, Operand::List(vec![s("OK")]))],
            ),
            (
                "tag.x IS NULL",
                vec![c(Key::Tag("x".into()), IsNull, Operand::None)],
            ),
            (
                "tag.x is not null",
                vec![c(Key::Tag("x".into()), IsNotNull, Operand::None)],
            ),
            (
                "tag.x Is  Not\nNull",
                vec![c(Key::Tag("x".into()), IsNotNull, Operand::None)],
            ),
            (
                "name like 'a%'",
                vec![c(attr("name"), Like, scalar(s("a%")))],
            ),
            (
                "name ILike 'a%'",
                vec![c(attr("name"), ILike, scalar(s("a%")))],
            ),
            (
                "  timestamp_ms > 5 and status = 'OK'   AND\n metadata.`k` LIKE 'v%'  ",
                vec![
                    c(attr("timestamp_ms"), Gt, scalar(Literal::Int(5))),
                    c(attr("status"), Eq, scalar(s("OK"))),
                    c(meta("k"), Like, scalar(s("v%"))),
                ],
            ),
            (
                "name = 'a AND b' AND name='OR'",
                vec![
                    c(attr("name"), Eq, scalar(s("a AND b"))),
                    c(attr("name"), Eq, scalar(s("OR"))),
                ],
            ),
        ];
        for (input, expected) in rows {
            assert_eq!(parse_filter(input), Ok(expected), "filter {input:?}");
        }
    }

    #[test]
    fn rejects() {
        // (filter, error message fragment, syntax error position if any)
        let rows: Vec<(&str, &str, Option<usize>)> = vec![
            (
                "status = 'OK' OR status = 'ERROR'",
                "Invalid clause(s) in filter string: 'OR'",
                None,
            ),
            ("status = 'OK' or name = 'x'", "OR is not supported", None),
            ("(status = 'OK')", "parentheses are not supported", None),
            ("name RLIKE 'a.*'", "RLIKE", None),
            ("status = 'OK' garbage", "expected AND or the end", Some(14)),
            ("status = 'OK' AND", "expected a clause after AND", Some(17)),
            (
                "status = 'OK' AND ",
                "expected a clause after AND",
                Some(18),
            ),
            ("status = 'OK", "unterminated string literal", Some(9)),
            (
                "metadata.`abc = 'x'",
                "unterminated string literal",
                Some(9),
            ),
            ("name = \"abc", "unterminated string literal", Some(7)),
            (
                "name = 'é' AND tag.x = 'abc",
                "unterminated string literal",
                Some(23),
            ),
            ("status OK", "expected a comparator", Some(7)),
            ("status == 'OK'", "expected a value", Some(8)),
            ("status = OK", "quote string values", Some(9)),
            ("status = NULL", "IS NULL", Some(9)),
            ("status IS 'x'", "expected NULL or NOT NULL", Some(10)),
            ("status IS NOT 'x'", "expected NULL or NOT NULL", Some(14)),
            ("status NOT LIKE 'x'", "expected IN after NOT", Some(11)),
            ("status IN 'OK'", "expected a parenthesised list", Some(10)),
            ("status IN ()", "empty IN list", Some(10)),
            ("status IN ('OK' 'ERROR')", "expected ',' or ')'", Some(16)),
            ("status IN ('OK',", "expected a value", Some(16)),
            ("status IN ('OK'", "unterminated IN list", Some(10)),
            ("status = ('OK')", "only allowed after IN", Some(9)),
            ("timestamp_ms > 5abc", "invalid number", Some(15)),
            ("timestamp_ms > -", "invalid number", Some(15)),
            ("timestamp_ms > 1.2.3", "invalid number", Some(15)),
            ("= 'x'", "expected a key", Some(0)),
            ("metadata. = 'x'", "expected a key", Some(9)),
            ("metadata.`` = 'x'", "empty key", Some(9)),
            (
                "span.attributes = 'x'",
                "expected an attribute key after span.attributes",
                Some(0),
            ),
            (
                "feedback.correctness = 'yes'",
                "\"feedback\" is not supported",
                None,
            ),
            (
                "expectation.answer = 'yes'",
                "\"expectation\" is not supported",
                None,
            ),
            ("issue.id = 'x'", "\"issue\" is not supported", None),
            ("foo.bar = 'x'", "unknown entity \"foo\"", None),
        ];
        for (input, fragment, position) in rows {
            let err = match parse_filter(input) {
                Ok(ast) => panic!("filter {input:?} parsed as {ast:?}"),
                Err(e) => e,
            };
            assert!(
                err.to_string().contains(fragment),
                "filter {input:?}: {err}"
            );
            match (position, &err) {
                (Some(p), QueryError::Syntax { position, .. }) => {
                    assert_eq!(*position, p, "filter {input:?}: {err}")
                }
                (None, QueryError::Unsupported(_)) => {}
                _ => panic!("filter {input:?}: unexpected error kind {err:?}"),
            }
        }
    }

    #[test]
    fn key_prefix() {
        assert_eq!(
            parse_key_prefix("  metadata.`a b` DESC"),
            Ok((Key::Metadata("a b".into()), 16))
        );
    }
}
