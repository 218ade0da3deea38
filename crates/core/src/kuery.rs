//! The subset of KQL that `GET /api/fleet/agents?kuery=` accepts: field
//! comparisons joined with `and` / `or` (and `not`, parentheses), e.g.
//! `status:online and (tags:prod or local_metadata.host.hostname:web-*)`.
//! Anything else is an error that says which part could not be parsed.
//!
//! A kuery comes from the request, so parsing it is bounded: at most
//! [`MAX_KUERY_LENGTH`] bytes, [`MAX_KUERY_DEPTH`] nested levels of `(` and
//! `not`, and [`MAX_KUERY_TERMS`] comparisons. `and` / `or` chains build a
//! left-deep tree, so with those limits no parsed [`Query`] is deeper than
//! `MAX_KUERY_TERMS + MAX_KUERY_DEPTH` and evaluating, printing or dropping
//! it cannot exhaust the stack.
//!
//! Matching is case-insensitive for ASCII letters only (the semantics of
//! [`str::eq_ignore_ascii_case`]): `WEB-*` matches `web-01`, but `Ä` does not
//! match `ä`. That is what SQLite's `lower(x) like lower(pattern)` does, so the
//! server can use it as an exact prefilter. `*` matches any run of characters
//! (including none) and is the only wildcard.
//!
//! The grammar and the limits are one; the fields are not. A record type
//! names its fields with a [`KueryField`] enum and lends its values through
//! [`Record`]: Fleet's agents are [`Field`] and [`Subject`] ([`parse`]);
//! rules, alerts and response actions declare their own and call
//! [`parse_fields`].

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The longest kuery [`parse`] accepts, in bytes (checked before tokenizing).
pub const MAX_KUERY_LENGTH: usize = 4096;
/// How deeply `(` and `not` may nest, counted together: 32 `(` parses, 33 does not.
pub const MAX_KUERY_DEPTH: usize = 32;
/// The most comparisons (`field:value` terms) a kuery may hold.
pub const MAX_KUERY_TERMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    PolicyId,
    Hostname,
    Version,
    Tags,
}

/// The fields of one kind of record that a kuery may name.
pub trait KueryField: Copy + Eq + fmt::Debug {
    /// The field `name` (as written in a kuery) refers to.
    fn parse(name: &str) -> Option<Self>;
    /// The canonical name, as the printer writes it.
    fn name(self) -> &'static str;
    /// Whether `<`, `<=`, `>`, `>=` apply (comparing dotted versions numerically).
    fn ordered(self) -> bool {
        false
    }
    /// The names to suggest when a kuery names an unknown field.
    const KNOWN: &'static str;
}

/// A record a kuery is evaluated against: the values of each field (several
/// for a multi-valued field such as tags, none for a missing one).
pub trait Record<F: KueryField> {
    fn values(&self, field: F) -> impl Iterator<Item = &str>;
}

impl KueryField for Field {
    const KNOWN: &'static str = "status, policy_id, local_metadata.host.hostname, local_metadata.elastic.agent.version or tags";

    fn parse(name: &str) -> Option<Field> {
        let name = name.strip_prefix("fleet-agents.").unwrap_or(name);
        match name {
            "status" => Some(Field::Status),
            "policy_id" => Some(Field::PolicyId),
            "local_metadata.host.hostname" | "hostname" => Some(Field::Hostname),
            "local_metadata.elastic.agent.version" | "agent.version" | "version" => Some(Field::Version),
            "tags" => Some(Field::Tags),
            _ => None,
        }
    }

    /// The canonical (Fleet) name.
    fn name(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::PolicyId => "policy_id",
            Field::Hostname => "local_metadata.host.hostname",
            Field::Version => "local_metadata.elastic.agent.version",
            Field::Tags => "tags",
        }
    }

    fn ordered(self) -> bool {
        self == Field::Version
    }
}

/// `:` is a glob match; the orderings are only accepted on the version field,
/// where they compare dotted versions numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The operator as written in a kuery.
    pub const fn symbol(self) -> &'static str {
        match self {
            Op::Eq => ":",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A parsed kuery. `Display` prints canonical kuery text that parses back to
/// an equal `Query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query<F: KueryField = Field> {
    /// `field op value`. [`parse`] stores the value ASCII-lowercased (matching
    /// is ASCII case-insensitive), and with any quoting and `\` escapes
    /// removed. In the value `*` is the only wildcard: it matches any run of
    /// characters, including none; every other character, `%` and `_`
    /// included, stands for itself. Only [`Field::Version`] is compared with
    /// an [`Op`] other than [`Op::Eq`] (for agents, [`Field::Version`]).
    Compare(F, Op, String),
    And(Box<Query<F>>, Box<Query<F>>),
    Or(Box<Query<F>>, Box<Query<F>>),
    Not(Box<Query<F>>),
}

/// An agent's values, as a kuery sees them.
pub struct Subject<'a> {
    pub status: &'a str,
    pub policy_id: &'a str,
    pub hostname: &'a str,
    pub version: &'a str,
    pub tags: &'a [String],
}

impl Record<Field> for Subject<'_> {
    fn values(&self, field: Field) -> impl Iterator<Item = &str> {
        let single = match field {
            Field::Status => Some(self.status),
            Field::PolicyId => Some(self.policy_id),
            Field::Hostname => Some(self.hostname),
            Field::Version => Some(self.version),
            Field::Tags => None,
        };
        let tags = if field == Field::Tags { self.tags } else { &[] };
        single.into_iter().chain(tags.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KueryError(pub String);

impl fmt::Display for KueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, KueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((start, Token::Open));
                i += 1;
            }
            ')' => {
                tokens.push((start, Token::Close));
                i += 1;
            }
            ':' => {
                tokens.push((start, Token::Op(Op::Eq)));
                i += 1;
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                let op = match (c, or_equal) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                tokens.push((start, Token::Op(op)));
                i += if or_equal { 2 } else { 1 };
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return Err(KueryError(format!("unclosed quote starting at position {start}"))),
                        (Some('"'), _) => break,
                        (Some('\\'), Some(&escaped)) => {
                            value.push(escaped);
                            i += 2;
                        }
                        (Some(&ch), _) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                tokens.push((start, Token::Quoted(value)));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.get(i) {
                    if ch.is_whitespace() || "():<>\"".contains(ch) {
                        break;
                    }
                    word.push(ch);
                    i += 1;
                }
                tokens.push((start, Token::Word(word)));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a, F> {
    field: std::marker::PhantomData<F>,
    input: &'a str,
    tokens: Vec<(usize, Token)>,
    at: usize,
    /// Comparisons parsed so far, bounded by `MAX_KUERY_TERMS`.
    terms: usize,
}

impl<F: KueryField> Parser<'_, F> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map(|(p, _)| *p).unwrap_or(self.input.len())
    }

    fn error(&self, expected: &str) -> KueryError {
        let position = self.position();
        let rest: String = self.input.chars().skip(position).take(30).collect();
        if rest.is_empty() {
            KueryError(format!("kuery `{}`: expected {expected} at the end", self.input))
        } else {
            KueryError(format!("kuery `{}`: expected {expected} at position {position}, found `{rest}`", self.input))
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    // `depth` is how many `(` and `not` enclose the current position; only
    // `unary` increases it, and it refuses to go past `MAX_KUERY_DEPTH`, so the
    // recursion `unary` → `or` → `and` → `unary` is bounded.

    fn or(&mut self, depth: usize) -> Result<Query<F>, KueryError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.at += 1;
            left = Query::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Query<F>, KueryError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.at += 1;
            left = Query::And(Box::new(left), Box::new(self.unary(depth)?));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Query<F>, KueryError> {
        let is_not = self.keyword("not");
        let is_open = self.peek() == Some(&Token::Open);
        if !is_not && !is_open {
            return self.comparison();
        }
        if depth >= MAX_KUERY_DEPTH {
            return Err(KueryError(format!("kuery nests deeper than {MAX_KUERY_DEPTH} levels of parentheses and `not`")));
        }
        self.at += 1;
        if is_not {
            return Ok(Query::Not(Box::new(self.unary(depth + 1)?)));
        }
        let inner = self.or(depth + 1)?;
        if self.peek() != Some(&Token::Close) {
            return Err(self.error("`)`"));
        }
        self.at += 1;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Query<F>, KueryError> {
        let field_name = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            _ => return Err(self.error("a field name")),
        };
        let Some(field) = F::parse(&field_name) else {
            return Err(KueryError(format!(
                "kuery `{}`: unknown field `{field_name}` at position {}; use {}",
                self.input,
                self.position(),
                F::KNOWN
            )));
        };
        self.at += 1;
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.error("`:` or a comparison after the field name")),
        };
        if op != Op::Eq && !field.ordered() {
            return Err(KueryError(format!("kuery `{}`: `{field_name}` can only be compared with `:`", self.input)));
        }
        self.at += 1;
        let value = match self.peek() {
            Some(Token::Word(text) | Token::Quoted(text)) => text.to_ascii_lowercase(),
            _ => return Err(self.error("a value")),
        };
        self.at += 1;
        self.terms += 1;
        if self.terms > MAX_KUERY_TERMS {
            return Err(KueryError(format!("kuery has more than {MAX_KUERY_TERMS} comparisons")));
        }
        Ok(Query::Compare(field, op, value))
    }
}

/// Parses a kuery; an empty one is `None` (matches everything). A kuery over
/// [`MAX_KUERY_LENGTH`] bytes, nesting deeper than [`MAX_KUERY_DEPTH`] or with
/// more than [`MAX_KUERY_TERMS`] comparisons is an error naming the limit.
pub fn parse(input: &str) -> Result<Option<Query>, KueryError> {
    parse_fields(input)
}

/// [`parse`] for the fields `F` of another kind of record, with the same
/// grammar and limits.
pub fn parse_fields<F: KueryField>(input: &str) -> Result<Option<Query<F>>, KueryError> {
    if input.len() > MAX_KUERY_LENGTH {
        return Err(KueryError(format!("kuery is {} bytes long; the limit is {MAX_KUERY_LENGTH} bytes", input.len())));
    }
    if input.trim().is_empty() {
        return Ok(None);
    }
    let mut parser = Parser { field: std::marker::PhantomData, input, tokens: tokenize(input)?, at: 0, terms: 0 };
    let query = parser.or(0)?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("`and`, `or` or the end"));
    }
    Ok(Some(query))
}

/// `text` with ASCII letters lowercased; borrowed when it has no uppercase
/// ASCII letter (always, for a value that came through [`parse`]).
fn ascii_lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(text.to_ascii_lowercase()) } else { Cow::Borrowed(text) }
}

/// Whether `text` matches `pattern`, both already ASCII-lowercased (see
/// [`ascii_lowercase`]); `*` matches any run of characters. The prefix before
/// the first `*` and the suffix after the last one are anchored; the parts in
/// between are found leftmost-first, which is enough for `*` and keeps it
/// O(pattern + text) per part (`str::split_once` uses the two-way search).
fn glob_lowercase(pattern: &str, text: &str) -> bool {
    let Some((first, after_first)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let (middle, last) = after_first.rsplit_once('*').unwrap_or(("", after_first));
    if !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    // `None` when prefix and suffix would overlap.
    let Some(mut rest) = text.get(first.len()..text.len() - last.len()) else {
        return false;
    };
    for part in middle.split('*').filter(|part| !part.is_empty()) {
        match rest.split_once(part) {
            Some((_, after)) => rest = after,
            None => return false,
        }
    }
    true
}

/// Compares dotted versions numerically (`8.10.0` > `8.9.2`); a part that is
/// not a number counts as 0.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn numbers(version: &str) -> impl Iterator<Item = u64> + '_ {
        version.split(['.', '-']).map(|part| part.parse().unwrap_or(0))
    }
    numbers(a).cmp(numbers(b))
}

impl<F: KueryField> Query<F> {
    /// Whether `record` matches: a comparison holds if any of the field's
    /// values satisfies it.
    pub fn matches(&self, record: &impl Record<F>) -> bool {
        match self {
            Query::And(a, b) => a.matches(record) && b.matches(record),
            Query::Or(a, b) => a.matches(record) || b.matches(record),
            Query::Not(inner) => !inner.matches(record),
            Query::Compare(field, op, value) => {
                let pattern = ascii_lowercase(value);
                record.values(*field).any(|text| match op {
                    Op::Eq => glob_lowercase(&pattern, &ascii_lowercase(text)),
                    Op::Lt => compare_versions(text, value).is_lt(),
                    Op::Le => compare_versions(text, value).is_le(),
                    Op::Gt => compare_versions(text, value).is_gt(),
                    Op::Ge => compare_versions(text, value).is_ge(),
                })
            }
        }
    }
}

/// Writes `query`, in parentheses when `parenthesize`.
fn write_operand<F: KueryField>(f: &mut fmt::Formatter<'_>, query: &Query<F>, parenthesize: bool) -> fmt::Result {
    if parenthesize { write!(f, "({query})") } else { write!(f, "{query}") }
}

/// Canonical kuery text: canonical field names, every value quoted (`\` and
/// `"` escaped), and parentheses only where `not` > `and` > `or` precedence
/// and left-to-right grouping need them, so that `parse` gives back an equal
/// `Query` for any `Query` that `parse` returned. (Canonical names and quotes
/// make the text longer than what was typed: near `MAX_KUERY_LENGTH` it can
/// exceed it. Nesting and the number of comparisons never grow.)
impl<F: KueryField> fmt::Display for Query<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Compare(field, op, value) => {
                f.write_str(field.name())?;
                match op {
                    Op::Eq => f.write_str(":")?,
                    _ => write!(f, " {} ", op.symbol())?,
                }
                f.write_char('"')?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        f.write_char('\\')?;
                    }
                    f.write_char(c)?;
                }
                f.write_char('"')
            }
            Query::And(a, b) => {
                write_operand(f, a, matches!(**a, Query::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, b, matches!(**b, Query::And(..) | Query::Or(..)))
            }
            Query::Or(a, b) => {
                write_operand(f, a, false)?;
                f.write_str(" or ")?;
                write_operand(f, b, matches!(**b, Query::Or(..)))
            }
            Query::Not(inner) => {
                f.write_str("not ")?;
                write_operand(f, inner, matches!(**inner, Query::And(..) | Query::Or(..)))
            }
        }
    }
}

/// The kuery the Fleet view sends for a status chip and a search box: text
/// with a `:` is taken as kuery; plain text searches host names.
pub fn for_view(status: Option<&str>, search: &str) -> String {
    let search = search.trim();
    let search_part = if search.is_empty() {
        None
    } else if search.contains(':') {
        Some(format!("({search})"))
    } else {
        let escaped = search.replace('\\', "\\\\").replace('"', "\\\"");
        Some(format!("local_metadata.host.hostname:\"*{escaped}*\""))
    };
    let status_part = status.filter(|s| !s.is_empty()).map(|s| format!("status:{s}"));
    match (status_part, search_part) {
        (Some(a), Some(b)) => format!("{a} and {b}"),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subject<'a>(status: &'a str, hostname: &'a str, version: &'a str, tags: &'a [String]) -> Subject<'a> {
        Subject { status, policy_id: "policy-1", hostname, version, tags }
    }

    /// `*` matches any run of characters; case-insensitive for ASCII letters.
    fn glob(pattern: &str, text: &str) -> bool {
        glob_lowercase(&ascii_lowercase(pattern), &ascii_lowercase(text))
    }

    fn matches(query: &str, subject: &Subject<'_>) -> bool {
        let parsed = parse(query);
        assert!(parsed.is_ok(), "{query}: {parsed:?}");
        parsed.is_ok_and(|q| q.is_none_or(|q| q.matches(subject)))
    }

    #[test]
    fn comparisons_and_combinations() {
        let tags = vec!["prod".to_owned(), "eu".to_owned()];
        let web = subject("online", "web-01.example", "8.15.2", &tags);
        for (query, expected) in [
            ("", true),
            ("status:online", true),
            ("status:offline", false),
            ("fleet-agents.status : online", true),
            ("status:\"online\"", true),
            ("local_metadata.host.hostname:web-*", true),
            ("local_metadata.host.hostname:WEB-01*", true),
            ("local_metadata.host.hostname:db-*", false),
            ("tags:prod and tags:eu", true),
            ("tags:prod and tags:us", false),
            ("tags:us or tags:eu", true),
            ("status:offline or status:online and tags:prod", true),
            ("(status:offline or status:online) and tags:us", false),
            ("not status:offline", true),
            ("policy_id:policy-1", true),
            ("local_metadata.elastic.agent.version >= 8.15.0", true),
            ("local_metadata.elastic.agent.version < 8.9.0", false),
            ("agent.version:8.15.*", true),
            ("status:online AND tags:prod", true),
        ] {
            assert_eq!(matches(query, &web), expected, "{query}");
        }
    }

    #[test]
    fn errors_say_which_part() {
        for (query, fragment) in [
            ("status:", "expected a value at the end"),
            ("status online", "expected `:` or a comparison"),
            ("hostname:web and", "expected a field name at the end"),
            ("color:blue", "unknown field `color`"),
            ("(status:online", "expected `)`"),
            ("status:online tags:x", "expected `and`, `or` or the end at position 14"),
            ("status:\"online", "unclosed quote"),
            ("status > online", "can only be compared with `:`"),
        ] {
            let err = parse(query).err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains(fragment), "{query}: {err}");
        }
    }

    #[test]
    fn view_filters_become_kuery() {
        assert_eq!(for_view(None, ""), "");
        assert_eq!(for_view(Some("orphaned"), ""), "status:orphaned");
        assert_eq!(for_view(None, " web "), "local_metadata.host.hostname:\"*web*\"");
        assert_eq!(for_view(Some("online"), "tags:prod or tags:eu"), "status:online and (tags:prod or tags:eu)");
        let tags = vec![];
        let subject = Subject { status: "online", policy_id: "p", hostname: "Web-07", version: "8", tags: &tags };
        let query = parse(&for_view(Some("online"), "web")).ok().flatten();
        assert!(query.is_some_and(|q| q.matches(&subject)));
    }

    /// Another kind of record with its own fields: same grammar, same limits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum ActionField {
        Command,
        Host,
    }

    impl KueryField for ActionField {
        const KNOWN: &'static str = "command or hosts";

        fn parse(name: &str) -> Option<Self> {
            match name {
                "command" => Some(ActionField::Command),
                "hosts" => Some(ActionField::Host),
                _ => None,
            }
        }

        fn name(self) -> &'static str {
            match self {
                ActionField::Command => "command",
                ActionField::Host => "hosts",
            }
        }
    }

    struct Action {
        command: &'static str,
        hosts: Vec<&'static str>,
    }

    impl Record<ActionField> for Action {
        fn values(&self, field: ActionField) -> impl Iterator<Item = &str> {
            let hosts = if field == ActionField::Host { self.hosts.clone() } else { Vec::new() };
            (field == ActionField::Command).then_some(self.command).into_iter().chain(hosts)
        }
    }

    #[test]
    fn other_records_bring_their_own_fields() {
        let action = Action { command: "isolate", hosts: vec!["web-01", "db-01"] };
        let parsed = |text: &str| parse_fields::<ActionField>(text);
        assert!(matches!(parsed("command:isolate and hosts:db-*"), Ok(Some(q)) if q.matches(&action)));
        assert!(matches!(parsed("not hosts:web-01"), Ok(Some(q)) if !q.matches(&action)));
        assert!(parsed("status:online").err().is_some_and(|e| e.0.contains("use command or hosts")));
        assert!(parsed("hosts > 1").err().is_some_and(|e| e.0.contains("can only be compared with `:`")));
        assert!(parsed(&"(".repeat(40)).err().is_some_and(|e| e.0.contains("32 levels")));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("8.10.0", "8.9.2").is_gt());
        assert!(compare_versions("8.9.2", "8.9.2").is_eq());
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcd"));
        assert!(glob("*", "anything"));
    }

    fn compare(field: Field, value: &str) -> Query {
        Query::Compare(field, Op::Eq, value.to_owned())
    }

    const DEPTH_ERROR: &str = "kuery nests deeper than 32 levels of parentheses and `not`";
    const TERMS_ERROR: &str = "kuery has more than 100 comparisons";

    fn error_of(query: &str) -> String {
        match parse(query) {
            Ok(parsed) => format!("no error: {parsed:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn limits_hold_exactly_at_the_limit() {
        let nested = |opens: usize| format!("{}status:online{}", "(".repeat(opens), ")".repeat(opens));
        let nots = |count: usize| format!("{}status:online", "not ".repeat(count));
        let mixed = |pairs: usize| format!("{}status:online{}", "(not ".repeat(pairs), ")".repeat(pairs));
        let terms = |count: usize, joiner: &str| vec!["tags:a"; count].join(joiner);
        // (kuery, None when it parses, else the whole error message)
        let cases: Vec<(String, Option<String>)> = vec![
            (format!("tags:{}", "a".repeat(MAX_KUERY_LENGTH - 5)), None),
            (format!("tags:{}", "a".repeat(MAX_KUERY_LENGTH - 4)), Some("kuery is 4097 bytes long; the limit is 4096 bytes".to_owned())),
            (format!("tags:{}", "é".repeat(2046)), Some("kuery is 4097 bytes long; the limit is 4096 bytes".to_owned())),
            (" ".repeat(MAX_KUERY_LENGTH), None),
            (" ".repeat(MAX_KUERY_LENGTH + 1), Some("kuery is 4097 bytes long; the limit is 4096 bytes".to_owned())),
            (nested(MAX_KUERY_DEPTH), None),
            (nested(MAX_KUERY_DEPTH + 1), Some(DEPTH_ERROR.to_owned())),
            (nots(MAX_KUERY_DEPTH), None),
            (nots(MAX_KUERY_DEPTH + 1), Some(DEPTH_ERROR.to_owned())),
            (mixed(MAX_KUERY_DEPTH / 2), None),
            (format!("not {}", mixed(MAX_KUERY_DEPTH / 2)), Some(DEPTH_ERROR.to_owned())),
            (format!("tags:a and {}", nested(MAX_KUERY_DEPTH)), None),
            (format!("tags:a or {}", nested(MAX_KUERY_DEPTH + 1)), Some(DEPTH_ERROR.to_owned())),
            (terms(MAX_KUERY_TERMS, " or "), None),
            (terms(MAX_KUERY_TERMS + 1, " or "), Some(TERMS_ERROR.to_owned())),
            (terms(MAX_KUERY_TERMS, " and "), None),
            (terms(MAX_KUERY_TERMS + 1, " and "), Some(TERMS_ERROR.to_owned())),
            (format!("({})", terms(MAX_KUERY_TERMS + 1, ") or (")), Some(TERMS_ERROR.to_owned())),
        ];
        for (query, expected) in cases {
            let outcome = parse(&query).map(|_| ()).map_err(|e| e.0);
            assert_eq!(outcome, expected.map_or(Ok(()), Err), "{}", query.chars().take(80).collect::<String>());
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let parens = format!("{}status:online{}", "(".repeat(2000), ")".repeat(2000));
        assert_eq!(error_of(&parens), DEPTH_ERROR);
        assert_eq!(error_of(&format!("{}status:online", "not ".repeat(1000))), DEPTH_ERROR);
        assert_eq!(error_of(&format!("{}status:online", "(not ".repeat(800))), DEPTH_ERROR);
        assert_eq!(error_of(&"(".repeat(4000)), DEPTH_ERROR);
        let nots = format!("{}status:online", "not ".repeat(6000));
        assert_eq!(error_of(&nots), "kuery is 24013 bytes long; the limit is 4096 bytes");
    }

    #[test]
    fn matching_is_case_insensitive_for_ascii_letters_only() {
        let tags = vec!["Prod".to_owned(), "Ärger".to_owned()];
        let web = subject("online", "WEB-01.Example", "8.15.2-SNAPSHOT", &tags);
        for (query, expected) in [
            ("hostname:web-01.example", true),
            ("hostname:\"WEB-01.EXAMPLE\"", true),
            ("hostname:*example", true),
            ("tags:PROD", true),
            ("tags:prod", true),
            ("tags:Ärger", true),
            ("tags:ärger", false),
            ("tags:*RGER", true),
            ("version:8.15.2-snapshot", true),
        ] {
            let outcome = parse(query).map(|q| q.map(|q| q.matches(&web)));
            assert_eq!(outcome, Ok(Some(expected)), "{query}");
        }
        // Field names are not values: they stay case-sensitive, as before.
        assert!(error_of("STATUS:online").contains("unknown field `STATUS`"));
        // The stored value is ASCII-lowercased once, at parse time.
        assert_eq!(parse("tags:\"PROD-Ä\""), Ok(Some(compare(Field::Tags, "prod-Ä"))));
        // A hand-built, uppercase value still matches case-insensitively.
        assert!(compare(Field::Tags, "PRO*").matches(&web));
    }

    #[test]
    fn glob_anchors_prefix_and_suffix() {
        for (pattern, text, expected) in [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("**", "", true),
            ("a*", "a", true),
            ("*a", "a", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("ab*ba", "aba", false),
            ("*b*", "abc", true),
            ("*b*b*", "abc", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("é*", "ÉTÉ", false),
            ("*%_*", "100%_", true),
            ("%", "x", false),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} on {text}");
        }
        // Many stars do not backtrack: this is one pass per part.
        let stars = format!("{}b", "*a".repeat(2000));
        assert!(!glob(&stars, &"a".repeat(4000)));
        assert!(glob(&stars, &format!("{}b", "a".repeat(4000))));
    }

    #[test]
    fn printer_writes_canonical_kuery() {
        for (query, printed) in [
            ("status:online", "status:\"online\""),
            ("fleet-agents.hostname:WEB-*", "local_metadata.host.hostname:\"web-*\""),
            ("agent.version>=8.15.0", "local_metadata.elastic.agent.version >= \"8.15.0\""),
            ("version < 9", "local_metadata.elastic.agent.version < \"9\""),
            ("policy_id:p or tags:a and tags:b", "policy_id:\"p\" or tags:\"a\" and tags:\"b\""),
            ("(tags:a or tags:b) and tags:c", "(tags:\"a\" or tags:\"b\") and tags:\"c\""),
            ("tags:a and (tags:b and tags:c)", "tags:\"a\" and (tags:\"b\" and tags:\"c\")"),
            ("(tags:a and tags:b) and tags:c", "tags:\"a\" and tags:\"b\" and tags:\"c\""),
            ("tags:a or (tags:b or tags:c)", "tags:\"a\" or (tags:\"b\" or tags:\"c\")"),
            ("((tags:a or tags:b)) or tags:c", "tags:\"a\" or tags:\"b\" or tags:\"c\""),
            ("tags:a or (tags:b and tags:c)", "tags:\"a\" or tags:\"b\" and tags:\"c\""),
            ("NOT (tags:a and tags:b)", "not (tags:\"a\" and tags:\"b\")"),
            ("not not tags:a", "not not tags:\"a\""),
            ("not (not (tags:a))", "not not tags:\"a\""),
            (r#"tags:"Say \"hi\" \\ *""#, r#"tags:"say \"hi\" \\ *""#),
            ("tags:\"\"", "tags:\"\""),
            ("tags:\"and\"", "tags:\"and\""),
        ] {
            let parsed = parse(query).ok().flatten();
            assert_eq!(parsed.as_ref().map(ToString::to_string).as_deref(), Some(printed), "{query}");
            assert_eq!(parse(printed).ok().flatten(), parsed, "{printed}");
        }
    }

    /// Word-sized pieces of kuery text, so that generated strings reach the
    /// parser's corners rather than failing at the first character.
    fn kuery_pieces() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "(",
            ")",
            ":",
            "<",
            ">",
            "<=",
            ">=",
            "\"",
            "\\",
            "*",
            " ",
            " ",
            " ",
            "not",
            "and",
            "or",
            "NOT",
            "status",
            "tags",
            "hostname",
            "version",
            "fleet-agents.status",
            "online",
            "web-*",
            "8.15.0",
            "é",
            "İ",
        ]);
        prop::collection::vec(piece, 0..300).prop_map(|pieces| pieces.concat())
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,12}",
            "[a-zA-Z0-9 *\"\\\\():<>._%-]{0,12}",
            prop::sample::select(vec!["and", "or", "not", "", "*", "\\", "\""]).prop_map(str::to_owned),
        ]
        .prop_map(|value| value.to_ascii_lowercase())
    }

    fn leaf() -> impl Strategy<Value = Query> {
        let field = prop::sample::select(vec![Field::Status, Field::PolicyId, Field::Hostname, Field::Version, Field::Tags]);
        let op = prop::sample::select(vec![Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge]);
        (field, op, value()).prop_map(|(field, op, value)| {
            let op = if field == Field::Version { op } else { Op::Eq };
            Query::Compare(field, op, value)
        })
    }

    fn query() -> impl Strategy<Value = Query> {
        leaf().prop_recursive(8, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Query::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Query::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|q| Query::Not(Box::new(q))),
            ]
        })
    }

    fn terms(query: &Query) -> usize {
        match query {
            Query::Compare(..) => 1,
            Query::And(a, b) | Query::Or(a, b) => terms(a) + terms(b),
            Query::Not(inner) => terms(inner),
        }
    }

    /// Checks that `text` parses or fails with an error, and that whatever it
    /// parses to evaluates and prints back to itself.
    fn parses_or_fails_cleanly(text: &str) -> Result<(), TestCaseError> {
        let tags = vec!["prod".to_owned()];
        let web = subject("online", "web-01", "8.15.0", &tags);
        if let Ok(Some(query)) = parse(text) {
            let _ = query.matches(&web);
            let printed = query.to_string();
            if printed.len() <= MAX_KUERY_LENGTH {
                prop_assert_eq!(parse(&printed), Ok(Some(query)), "{}", printed);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
            parses_or_fails_cleanly(&text)?;
        }

        #[test]
        fn kuery_alphabet_parses_or_fails_cleanly(text in kuery_pieces()) {
            parses_or_fails_cleanly(&text)?;
        }

        #[test]
        fn generated_queries_print_and_parse_back(query in query()) {
            let printed = query.to_string();
            prop_assume!(terms(&query) <= MAX_KUERY_TERMS && printed.len() <= MAX_KUERY_LENGTH);
            prop_assert_eq!(parse(&printed), Ok(Some(query)), "{}", printed);
        }

        #[test]
        fn nesting_beyond_the_limit_is_refused(
            opens in prop::collection::vec(any::<bool>(), MAX_KUERY_DEPTH + 1..600),
            prefix in prop::sample::select(vec!["", "tags:a and ", "tags:a or not "]),
        ) {
            let mut text = prefix.to_owned();
            let mut closes = String::new();
            for paren in opens {
                text.push_str(if paren { "( " } else { "not " });
                if paren {
                    closes.push(')');
                }
            }
            // `prefix`'s own `not` counts too, which only gets deeper.
            let text = format!("{text}status:online{closes}");
            prop_assert!(text.len() <= MAX_KUERY_LENGTH);
            prop_assert_eq!(error_of(&text), DEPTH_ERROR);
        }

        #[test]
        fn comparisons_beyond_the_limit_are_refused(
            joiners in prop::collection::vec(prop::sample::select(vec![" and ", " or ", " and not ", " or ("]), MAX_KUERY_TERMS..250),
        ) {
            let mut text = "tags:a".to_owned();
            let mut opened = 0;
            for &joiner in &joiners {
                // Stay well inside the depth limit: this is about terms.
                let joiner = if joiner == " or (" && opened == MAX_KUERY_DEPTH / 2 { " or " } else { joiner };
                if joiner == " or (" {
                    opened += 1;
                }
                text.push_str(joiner);
                text.push_str("tags:a");
            }
            text.push_str(&")".repeat(opened));
            prop_assert!(text.len() <= MAX_KUERY_LENGTH);
            prop_assert_eq!(error_of(&text), TERMS_ERROR);
        }

        #[test]
        fn overlong_input_is_refused(seed in ".{1,64}", length in MAX_KUERY_LENGTH + 1..3 * MAX_KUERY_LENGTH) {
            let mut text = String::new();
            while text.len() < length {
                text.push_str(&seed);
            }
            let expected = format!("kuery is {} bytes long; the limit is 4096 bytes", text.len());
            prop_assert_eq!(error_of(&text), expected);
        }
    }
}
