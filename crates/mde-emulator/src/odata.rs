//! The slice of OData v4 that MDE's list routes take and Kibana's connector
//! sends: `$filter` as clauses joined by `and`, each `field eq 'v'` or
//! `field in ('a','b')`; `$top`, `$skip`, `$count=true` and
//! `$orderby=field asc|desc`.
//!
//! The parser is bounded (at most [`MAX_FILTER_BYTES`] of text and
//! [`MAX_CLAUSES`] clauses) and never recurses. Items are filtered on their
//! JSON form, so the field names are the JSON's; values compare without
//! regard to ASCII case, as MDE's do, and an array field (`machineTags`)
//! matches when one of its elements does.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

pub const MAX_FILTER_BYTES: usize = 4096;
pub const MAX_CLAUSES: usize = 50;
/// MDE's documented ceiling for `$top`.
pub const MAX_TOP: usize = 10_000;

/// One `$filter` clause: `field eq 'v'` (one value) or `field in (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub descending: bool,
}

/// A list route's query options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: Vec<Clause>,
    pub top: Option<usize>,
    pub skip: usize,
    pub count: bool,
    pub order_by: Option<OrderBy>,
}

/// Why a query was refused: MDE answers these 400 `ODataError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ODataError(pub String);

impl fmt::Display for ODataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, ODataError> {
    Err(ODataError(message.into()))
}

impl ListQuery {
    /// Reads `$filter`, `$top`, `$skip`, `$count` and `$orderby`; `fields` are
    /// the properties a filter or an order may name (matched without regard to
    /// case, kept in their canonical spelling). Other parameters are ignored.
    pub fn parse(params: &HashMap<String, String>, fields: &[&str]) -> Result<Self, ODataError> {
        let mut query = ListQuery::default();
        if let Some(filter) = params.get("$filter") {
            query.filter = parse_filter(filter, fields)?;
        }
        if let Some(top) = params.get("$top") {
            match top.trim().parse::<usize>() {
                Ok(top) if top <= MAX_TOP => query.top = Some(top),
                Ok(_) => return error(format!("$top must be at most {MAX_TOP}")),
                Err(_) => return error(format!("Invalid value for $top: '{top}'")),
            }
        }
        if let Some(skip) = params.get("$skip") {
            query.skip = skip.trim().parse().or_else(|_| error(format!("Invalid value for $skip: '{skip}'")))?;
        }
        if let Some(count) = params.get("$count") {
            query.count = match count.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return error(format!("Invalid value for $count: '{count}'")),
            };
        }
        if let Some(order) = params.get("$orderby") {
            query.order_by = Some(parse_order_by(order, fields)?);
        }
        Ok(query)
    }

    /// Filters, orders and pages `items` (their JSON forms); returns the
    /// number that matched before paging and the page.
    pub fn apply(&self, items: Vec<Value>) -> (usize, Vec<Value>) {
        let mut matched: Vec<Value> = items.into_iter().filter(|item| self.filter.iter().all(|clause| clause.matches(item))).collect();
        if let Some(order) = &self.order_by {
            matched.sort_by(|a, b| {
                let ordering = compare(a.get(&order.field), b.get(&order.field));
                if order.descending { ordering.reverse() } else { ordering }
            });
        }
        let total = matched.len();
        let page = matched.into_iter().skip(self.skip).take(self.top.unwrap_or(MAX_TOP)).collect();
        (total, page)
    }
}

impl Clause {
    fn matches(&self, item: &Value) -> bool {
        match item.get(&self.field) {
            Some(Value::Array(elements)) => elements.iter().any(|element| self.matches_scalar(element)),
            Some(value) => self.matches_scalar(value),
            None => false,
        }
    }

    fn matches_scalar(&self, value: &Value) -> bool {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => return false,
            other => other.to_string(),
        };
        self.values.iter().any(|v| v.eq_ignore_ascii_case(&text))
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Less,
        (_, Some(Value::Null) | None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

fn canonical(name: &str, fields: &[&str]) -> Result<String, ODataError> {
    match fields.iter().find(|field| field.eq_ignore_ascii_case(name)) {
        Some(field) => Ok((*field).to_owned()),
        None => error(format!("Invalid filter: property '{name}' is not supported (supported: {})", fields.join(", "))),
    }
}

fn parse_order_by(text: &str, fields: &[&str]) -> Result<OrderBy, ODataError> {
    let mut words = text.split_whitespace();
    let Some(field) = words.next() else { return error("$orderby is empty") };
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return error(format!("Invalid $orderby direction '{other}' (asc or desc)")),
    };
    if words.next().is_some() {
        return error("$orderby takes one property");
    }
    Ok(OrderBy { field: canonical(field, fields)?, descending })
}

/// Parses a `$filter` expression into its clauses (all of which must hold).
pub fn parse_filter(text: &str, fields: &[&str]) -> Result<Vec<Clause>, ODataError> {
    if text.len() > MAX_FILTER_BYTES {
        return error(format!("$filter is longer than {MAX_FILTER_BYTES} bytes"));
    }
    let mut lexer = Lexer { text, pos: 0 };
    let mut clauses = Vec::new();
    loop {
        if clauses.len() == MAX_CLAUSES {
            return error(format!("$filter has more than {MAX_CLAUSES} clauses"));
        }
        let field = match lexer.next()? {
            Some(Token::Word(word)) => canonical(word, fields)?,
            Some(other) => return error(format!("Invalid filter: expected a property name, found {other}")),
            None if clauses.is_empty() => return error("$filter is empty"),
            None => return error("Invalid filter: a clause is missing after 'and'"),
        };
        let values = match lexer.next()? {
            Some(Token::Word(op)) if op.eq_ignore_ascii_case("eq") => vec![lexer.literal()?],
            Some(Token::Word(op)) if op.eq_ignore_ascii_case("in") => {
                lexer.expect(Token::Open)?;
                let mut values = vec![lexer.literal()?];
                loop {
                    match lexer.next()? {
                        Some(Token::Comma) => values.push(lexer.literal()?),
                        Some(Token::Close) => break,
                        Some(other) => return error(format!("Invalid filter: expected ',' or ')', found {other}")),
                        None => return error("Invalid filter: unclosed '('"),
                    }
                }
                values
            }
            Some(Token::Word(op)) => return error(format!("Invalid filter: operator '{op}' is not supported (eq, in)")),
            Some(other) => return error(format!("Invalid filter: expected an operator after '{field}', found {other}")),
            None => return error(format!("Invalid filter: '{field}' has no operator")),
        };
        clauses.push(Clause { field, values });
        match lexer.next()? {
            None => return Ok(clauses),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("and") => {}
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("or") => return error("Invalid filter: only 'and' joins clauses"),
            Some(other) => return error(format!("Invalid filter: expected 'and', found {other}")),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Literal(String),
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(word) => write!(f, "'{word}'"),
            Token::Literal(value) => write!(f, "the value '{value}'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Result<Option<Token<'a>>, ODataError> {
        let rest = &self.text[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let Some(first) = trimmed.chars().next() else { return Ok(None) };
        let token = match first {
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '\'' => return self.quoted().map(Some),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let len = trimmed.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')).unwrap_or(trimmed.len());
                self.pos += len;
                return Ok(Some(Token::Word(&trimmed[..len])));
            }
            other => return error(format!("Invalid filter: unexpected '{other}'")),
        };
        self.pos += 1;
        Ok(Some(token))
    }

    /// A single-quoted string; `''` inside it is one quote.
    fn quoted(&mut self) -> Result<Token<'a>, ODataError> {
        let mut value = String::new();
        let mut chars = self.text[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                value.push(c);
                continue;
            }
            if self.text[self.pos + 1 + i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            self.pos += 1 + i + 1;
            return Ok(Token::Literal(value));
        }
        error("Invalid filter: unclosed string")
    }

    /// A value: a quoted string, or a bare number or word (`true`, `12`).
    fn literal(&mut self) -> Result<String, ODataError> {
        match self.next()? {
            Some(Token::Literal(value)) => Ok(value),
            Some(Token::Word(word)) => Ok(word.to_owned()),
            Some(other) => error(format!("Invalid filter: expected a value, found {other}")),
            None => error("Invalid filter: a value is missing"),
        }
    }

    fn expect(&mut self, wanted: Token<'_>) -> Result<(), ODataError> {
        match self.next()? {
            Some(token) if token == wanted => Ok(()),
            Some(other) => error(format!("Invalid filter: expected {wanted}, found {other}")),
            None => error(format!("Invalid filter: expected {wanted}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FIELDS: &[&str] = &["id", "status", "machineId", "type", "computerDnsName", "machineTags", "creationDateTimeUtc"];

    fn clause(field: &str, values: &[&str]) -> Clause {
        Clause { field: field.into(), values: values.iter().map(|v| (*v).into()).collect() }
    }

    #[test]
    fn filters_parse_into_clauses() {
        let cases: &[(&str, Vec<Clause>)] = &[
            ("id eq 'a'", vec![clause("id", &["a"])]),
            ("  computerDnsName   eq   'finance-ws-01.corp.example' ", vec![clause("computerDnsName", &["finance-ws-01.corp.example"])]),
            ("id in ('a','b', 'c')", vec![clause("id", &["a", "b", "c"])]),
            ("id in ('a')", vec![clause("id", &["a"])]),
            // Kibana's builder: ` AND `, scalar and array clauses.
            (
                "status in ('Pending','InProgress') AND machineId eq 'm1'",
                vec![clause("status", &["Pending", "InProgress"]), clause("machineId", &["m1"])],
            ),
            ("MACHINEID EQ 'm1' and Type Eq 'Isolate'", vec![clause("machineId", &["m1"]), clause("type", &["Isolate"])]),
            ("computerDnsName eq 'o''brien'", vec![clause("computerDnsName", &["o'brien"])]),
            ("id eq ''", vec![clause("id", &[""])]),
            ("id eq 42", vec![clause("id", &["42"])]),
            ("id eq 'a and b'", vec![clause("id", &["a and b"])]),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_filter(text, FIELDS).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("id", "no operator"),
            ("id eq", "value is missing"),
            ("id ne 'a'", "operator 'ne'"),
            ("id gt 'a'", "operator 'gt'"),
            ("secret eq 'a'", "property 'secret'"),
            ("id eq 'a' or id eq 'b'", "only 'and'"),
            ("id eq 'a' id eq 'b'", "expected 'and'"),
            ("id eq 'a", "unclosed string"),
            ("id in ('a','b'", "unclosed '('"),
            ("id in 'a'", "expected '('"),
            ("id in ('a';'b')", "unexpected ';'"),
            ("id eq 'a' and", "missing after 'and'"),
            ("(id eq 'a')", "expected a property name"),
        ];
        for (text, needle) in cases {
            let ODataError(message) = parse_filter(text, FIELDS).unwrap_err();
            assert!(message.contains(needle), "{text:?}: {message}");
        }
    }

    #[test]
    fn filters_are_bounded() {
        let fifty = vec!["id eq 'a'"; MAX_CLAUSES].join(" and ");
        assert_eq!(parse_filter(&fifty, FIELDS).unwrap().len(), MAX_CLAUSES);
        let fifty_one = vec!["id eq 'a'"; MAX_CLAUSES + 1].join(" and ");
        assert!(parse_filter(&fifty_one, FIELDS).unwrap_err().0.contains("more than 50 clauses"));
        let long = format!("id eq '{}'", "x".repeat(MAX_FILTER_BYTES));
        assert!(parse_filter(&long, FIELDS).unwrap_err().0.contains("longer than 4096"));
    }

    #[test]
    fn multibyte_text_does_not_trip_the_lexer() {
        assert_eq!(parse_filter("computerDnsName eq 'пк-01'", FIELDS).unwrap(), vec![clause("computerDnsName", &["пк-01"])]);
        assert!(parse_filter("computerDnsName eq é", FIELDS).is_err());
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn list_options_parse_and_are_checked() {
        let query = ListQuery::parse(&params(&[("$top", "2"), ("$skip", "1"), ("$count", "true"), ("$orderby", "creationDateTimeUtc desc")]), FIELDS)
            .unwrap();
        assert_eq!(query.top, Some(2));
        assert_eq!(query.skip, 1);
        assert!(query.count);
        assert_eq!(query.order_by, Some(OrderBy { field: "creationDateTimeUtc".into(), descending: true }));
        for bad in [("$top", "10001"), ("$top", "-1"), ("$skip", "x"), ("$count", "yes"), ("$orderby", "id sideways"), ("$orderby", "nope")] {
            assert!(ListQuery::parse(&params(&[bad]), FIELDS).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn apply_filters_orders_counts_and_pages() {
        let items = vec![
            json!({"id": "a", "status": "Succeeded", "machineTags": ["vip"], "creationDateTimeUtc": "2024-01-01T00:00:01Z"}),
            json!({"id": "b", "status": "Pending", "machineTags": [], "creationDateTimeUtc": "2024-01-01T00:00:03Z"}),
            json!({"id": "c", "status": "Pending", "machineTags": ["VIP", "x"], "creationDateTimeUtc": "2024-01-01T00:00:02Z"}),
        ];
        let ids = |page: &[Value]| page.iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();

        let query = ListQuery::parse(&params(&[("$filter", "status eq 'pending'")]), FIELDS).unwrap();
        let (total, page) = query.apply(items.clone());
        assert_eq!((total, ids(&page)), (2, vec!["b".to_owned(), "c".to_owned()]));

        let query = ListQuery::parse(&params(&[("$filter", "machineTags eq 'vip'")]), FIELDS).unwrap();
        assert_eq!(ids(&query.apply(items.clone()).1), ["a", "c"]);

        let query = ListQuery::parse(&params(&[("$orderby", "creationDateTimeUtc desc"), ("$top", "2"), ("$skip", "1")]), FIELDS).unwrap();
        let (total, page) = query.apply(items.clone());
        assert_eq!((total, ids(&page)), (3, vec!["c".to_owned(), "a".to_owned()]));

        let query = ListQuery::parse(&params(&[("$filter", "id in ('a','c') and status eq 'Pending'")]), FIELDS).unwrap();
        assert_eq!(ids(&query.apply(items).1), ["c"]);
    }
}
