//! The subset of KQL that `GET /api/fleet/agents?kuery=` accepts: field
//! comparisons joined with `and` / `or` (and `not`, parentheses), e.g.
//! `status:online and (tags:prod or local_metadata.host.hostname:web-*)`.
//! Anything else is an error that says which part could not be parsed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    PolicyId,
    Hostname,
    Version,
    Tags,
}

impl Field {
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Compare(Field, Op, String),
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
}

/// The values a query is evaluated against.
pub struct Subject<'a> {
    pub status: &'a str,
    pub policy_id: &'a str,
    pub hostname: &'a str,
    pub version: &'a str,
    pub tags: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KueryError(pub String);

impl std::fmt::Display for KueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    while i < chars.len() {
        let c = chars[i];
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
                    match chars.get(i) {
                        None => return Err(KueryError(format!("unclosed quote starting at position {start}"))),
                        Some('"') => break,
                        Some('\\') if chars.get(i + 1).is_some() => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(ch) => {
                            value.push(*ch);
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

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<(usize, Token)>,
    at: usize,
}

impl Parser<'_> {
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

    fn or(&mut self) -> Result<Query, KueryError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Query::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, KueryError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            left = Query::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Query, KueryError> {
        if self.keyword("not") {
            self.at += 1;
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err(self.error("`)`"));
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Query, KueryError> {
        let field_name = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            _ => return Err(self.error("a field name")),
        };
        let Some(field) = Field::parse(&field_name) else {
            return Err(KueryError(format!(
                "kuery `{}`: unknown field `{field_name}` at position {}; use status, policy_id, local_metadata.host.hostname, local_metadata.elastic.agent.version or tags",
                self.input,
                self.position()
            )));
        };
        self.at += 1;
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.error("`:` or a comparison after the field name")),
        };
        if op != Op::Eq && field != Field::Version {
            return Err(KueryError(format!("kuery `{}`: `{field_name}` can only be compared with `:`", self.input)));
        }
        self.at += 1;
        let value = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            Some(Token::Quoted(text)) => text.clone(),
            _ => return Err(self.error("a value")),
        };
        self.at += 1;
        Ok(Query::Compare(field, op, value))
    }
}

/// Parses a kuery; an empty one is `None` (matches everything).
pub fn parse(input: &str) -> Result<Option<Query>, KueryError> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    let mut parser = Parser { input, tokens: tokenize(input)?, at: 0 };
    let query = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("`and`, `or` or the end"));
    }
    Ok(Some(query))
}

/// `*` matches any run of characters; case-insensitive, like Fleet's keyword
/// search in practice.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Compares dotted versions numerically (`8.10.0` > `8.9.2`).
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let numbers = |v: &str| v.split(['.', '-']).map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    numbers(a).cmp(&numbers(b))
}

impl Query {
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Query::And(a, b) => a.matches(subject) && b.matches(subject),
            Query::Or(a, b) => a.matches(subject) || b.matches(subject),
            Query::Not(inner) => !inner.matches(subject),
            Query::Compare(field, op, value) => match field {
                Field::Status => glob(value, subject.status),
                Field::PolicyId => glob(value, subject.policy_id),
                Field::Hostname => glob(value, subject.hostname),
                Field::Tags => subject.tags.iter().any(|tag| glob(value, tag)),
                Field::Version => {
                    let ordering = compare_versions(subject.version, value);
                    match op {
                        Op::Eq => glob(value, subject.version),
                        Op::Lt => ordering.is_lt(),
                        Op::Le => ordering.is_le(),
                        Op::Gt => ordering.is_gt(),
                        Op::Ge => ordering.is_ge(),
                    }
                }
            },
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

    fn subject<'a>(status: &'a str, hostname: &'a str, version: &'a str, tags: &'a [String]) -> Subject<'a> {
        Subject { status, policy_id: "policy-1", hostname, version, tags }
    }

    fn matches(query: &str, subject: &Subject<'_>) -> bool {
        match parse(query) {
            Ok(Some(q)) => q.matches(subject),
            Ok(None) => true,
            Err(e) => {
                assert!(false, "{query}: {e}");
                false
            }
        }
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

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("8.10.0", "8.9.2").is_gt());
        assert!(compare_versions("8.9.2", "8.9.2").is_eq());
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcd"));
        assert!(glob("*", "anything"));
    }
}
