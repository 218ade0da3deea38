//! Action parameter templates: a rule action's params are mustache templates
//! (`{{rule.name}}`, `{{#context.alerts}}…{{/context.alerts}}`, `{{{raw}}}`),
//! rendered with the rule's variables before the connector runs, as Kibana's
//! actions plugin does (`server/lib/mustache_renderer.ts`), with the escaping
//! each connector type asks for per parameter, and bounded.
//!
//! What Kibana does, and so this module:
//! - Escaping: `Json` (a webhook's `body`) writes a value as the inside of a
//!   JSON string (`JSON.stringify` less its quotes), so a value can never end
//!   the string it stands in; `Markdown` backslashes ``\ | ` * _ { } [ ] ( ) # + - . !``;
//!   `Html` (an email's `messageHTML`) is mustache's HTML escape; `None` writes
//!   the value as it is. Numbers are never escaped (mustache.js writes them
//!   with `String(n)`), and `{{{x}}}` / `{{&x}}` never escape.
//! - Values: an object renders as its JSON, an array as its items joined with
//!   commas (an object item as its JSON, `null` as nothing), numbers as
//!   JavaScript prints them; `null` and missing variables render as nothing,
//!   never an error. An array also answers `length` and `asJSON`, a string
//!   `length`. A variable whose key holds dots (`"kibana.alert.id"`) also
//!   answers as nested objects, as Kibana's `convertDotVariables`.
//! - Lookups as mustache.js: `{{a.b}}` is looked up in the innermost section's
//!   item first and in the enclosing ones after, and is found where the whole
//!   path exists; `{{.}}` is the current item.
//! - Sections as mustache.js: false, `null`, `0` and `""` are false (an empty
//!   list renders nothing), a list renders once per item, `true` once, any
//!   other value once with that value as the current item; an inverted
//!   section renders when the value is false, missing or an empty list.
//! - Left out: Kibana's lambdas (`{{#EvalMath}}`, `{{#FormatDate}}`,
//!   `{{#ParseHjson}}`, `{{#FormatNumber}}`): they read as sections over
//!   missing variables and render nothing. Where Kibana writes "error
//!   rendering mustache template" into the param, Warden refuses with a
//!   [`TemplateError`]. An object's JSON lists its keys in order (serde_json
//!   keeps no insertion order here), where Kibana keeps the order they came in.
//!
//! # The engine: ramhorns, with our `Content`
//! The parser is `ramhorns`'s; what each tag renders is decided here, by a
//! `Content` implementation over `serde_json::Value`: the lookup rules, the
//! truthiness, the rendering of values, the escaping and the counting of the
//! work. Weighed against it:
//! - `handlebars`: well kept and takes a custom escape function, but its
//!   grammar has no inverted section `{{^x}}…{{/x}}` and no `{{.}}` (both
//!   refused as syntax errors, both common in Kibana templates), it renders
//!   an object as `[object]`, and nothing in it counts iterations.
//! - `mustache` (nickel-org): unmaintained since 2019; HTML escaping is
//!   built in and its data model has no hook to count work or render values
//!   as Kibana does.
//! - `mustache2`, `ribboncurls`: spec-complete but young and single-handed,
//!   with HTML escaping fixed and no hooks (ribboncurls takes its data as YAML
//!   text).
//! - `upon`, `minijinja`: Jinja's syntax, not mustache's (minijinja's fuel
//!   would have bounded the cost).
//!
//! ramhorns (1.0, MPL-2.0, maintained slowly) has the mustache syntax Kibana
//! templates use, lexes without recursion, refuses sections nested deeper
//! than 16, and calls its `Content` for every lookup and every section, which
//! is where the bounds are enforced. Its differences from mustache.js, kept:
//! - Lines holding only a section tag are not removed (mustache.js removes
//!   them): a list rendered one item a line has blank lines between items.
//! - `{{a b}}` reads as `{{#a}}{{b}}{{/a}}` (mustache.js finds no variable
//!   named `a b`).
//! - Changing the delimiters (`{{=<% %>=}}`) and partials (`{{> name}}`) are
//!   refused.
//!
//! Two of its gaps are closed here: it accepts a section left open at the
//! end (the template is parsed again inside a section of our own, which then
//! does not close), and it drops the whitespace that ends a template (which
//! the same wrapping keeps). Its errors carry no position: the position given
//! is where ramhorns stops on the shortest failing prefix of the template, or,
//! for a section never closed, its last opening tag.
//!
//! # Bounds
//! A template is at most [`MAX_TEMPLATE_BYTES`] long and nests sections at
//! most [`MAX_SECTION_DEPTH`] deep; one render (one call, every param of it)
//! renders section bodies at most [`MAX_SECTION_ITERATIONS`] times, makes at
//! most [`MAX_LOOKUP_STEPS`] lookup steps (one per scope and per name part
//! tried, and per 16 bytes read to answer `asJSON` or a string's `length`)
//! and writes at most [`MAX_OUTPUT_BYTES`]. Past a limit the render
//! stops at once: the output goes to a writer that refuses every write from
//! then on, which unwinds ramhorns.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io;

use ramhorns::encoding::Encoder;
use ramhorns::traits::ContentSequence;
use ramhorns::{Content, Section, Template};
use serde::Serialize;
use serde_json::{Map, Value};
use warden_core::actions::{EMAIL, SERVER_LOG, WEBHOOK};

/// The longest template (in bytes) rendered.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// How deep sections may nest (ramhorns's 16, less the section this module wraps every template in).
pub const MAX_SECTION_DEPTH: usize = 15;
/// How many times one render may render a section's body.
pub const MAX_SECTION_ITERATIONS: u32 = 10_000;
/// How many lookup steps one render may make: each scope a name is looked up
/// in, each part of a dotted name, and each 16 bytes read to answer a list's
/// `asJSON` or a string's `length`, is one.
pub const MAX_LOOKUP_STEPS: u32 = 1_000_000;
/// The most one render may write (all the params of one call together).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// How a variable's value is escaped where `{{x}}` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As it is (an email's subject and recipients, a log message).
    None,
    /// As the inside of a JSON string (a webhook's body).
    Json,
    /// Markdown's special characters backslashed (an email's message).
    Markdown,
    /// HTML's special characters as entities (an email's `messageHTML`, as Kibana's `'html'`).
    Html,
}

/// Where a syntax error is: 1-based, the column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a template was not rendered, for the rule's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("bad template syntax{}: {problem}", at(.position))]
    Syntax { problem: String, position: Option<Position> },
    #[error("too large: the template is {bytes} bytes long, and at most {MAX_TEMPLATE_BYTES} are allowed")]
    TooLong { bytes: usize },
    #[error("too deep: sections are nested more than {MAX_SECTION_DEPTH} deep")]
    TooDeep,
    #[error(
        "too costly: section bodies would be rendered more than {MAX_SECTION_ITERATIONS} times; nested sections multiply the lengths of their lists, so loop over fewer items or nest fewer sections"
    )]
    TooManyIterations,
    #[error("too costly: more than {MAX_LOOKUP_STEPS} lookup steps; use fewer tags, or shorter dotted names, in sections over long lists")]
    TooManyLookups,
    #[error("too large: the rendered text would be longer than {MAX_OUTPUT_BYTES} bytes; render fewer or shorter values")]
    OutputTooLarge,
    /// The error of one param (`body`, `message`, `to[1]`).
    #[error("[{param}]: {error}")]
    Param { param: String, error: Box<TemplateError> },
}

fn at(position: &Option<Position>) -> String {
    position.map(|position| format!(" at {position}")).unwrap_or_default()
}

impl TemplateError {
    fn in_param(self, param: &str) -> TemplateError {
        TemplateError::Param { param: param.to_owned(), error: Box::new(self) }
    }
}

/// Renders `template` with `variables` (the rule's `rule`, `context`,
/// `alert`, `state`… as one object), escaping each `{{x}}` with `escape`.
/// A string with no `{{` is returned as it is.
pub fn render(template: &str, variables: &Value, escape: Escape) -> Result<String, TemplateError> {
    if !is_template(template) {
        return Ok(template.to_owned());
    }
    render_with(template, &kibana_view(variables), escape, &Budget::default())
}

/// A rule action's params with their templates rendered, as Kibana's
/// `renderParameterTemplates` for the type:
/// - `.webhook`: `body` with [`Escape::Json`]; nothing else.
/// - `.email`: every text, in lists and objects too (`to`, `cc`, `bcc`,
///   `subject`, `replyTo`), as it is; `message` with [`Escape::Markdown`],
///   `messageHTML` with [`Escape::Html`].
/// - `.server-log`: every text (`message`, `level`) as it is (Kibana's default
///   for a type without its own rendering).
/// - Any other type, system actions (`.cases`) included: unchanged.
///
/// Only strings are rendered; one budget covers all of them.
pub fn render_action_params(connector_type_id: &str, params: &Map<String, Value>, variables: &Value) -> Result<Map<String, Value>, TemplateError> {
    // Which params are rendered and how; `deep`: the texts inside lists and objects too.
    let (escape_of, deep): (fn(&str) -> Option<Escape>, bool) = match connector_type_id {
        WEBHOOK => (|key| (key == "body").then_some(Escape::Json), false),
        EMAIL => (
            |key| {
                Some(match key {
                    "message" => Escape::Markdown,
                    "messageHTML" => Escape::Html,
                    _ => Escape::None,
                })
            },
            true,
        ),
        SERVER_LOG => (|_| Some(Escape::None), true),
        _ => return Ok(params.clone()),
    };
    if !params.iter().any(|(key, value)| escape_of(key).is_some() && holds_template(value)) {
        return Ok(params.clone());
    }
    let view = kibana_view(variables);
    let budget = Budget::default();
    params
        .iter()
        .map(|(key, value)| {
            let rendered = match escape_of(key) {
                Some(escape) if deep || value.is_string() => render_value(key, value, &view, escape, &budget)?,
                _ => value.clone(),
            };
            Ok((key.clone(), rendered))
        })
        .collect()
}

/// Every string in `value` rendered; `path` names it in errors.
fn render_value(path: &str, value: &Value, view: &Value, escape: Escape, budget: &Budget) -> Result<Value, TemplateError> {
    match value {
        Value::String(text) if is_template(text) => render_with(text, view, escape, budget).map(Value::String).map_err(|err| err.in_param(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| render_value(&format!("{path}[{i}]"), item, view, escape, budget))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(fields) => fields
            .iter()
            .map(|(key, field)| Ok((key.clone(), render_value(&format!("{path}.{key}"), field, view, escape, budget)?)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn is_template(text: &str) -> bool {
    text.contains("{{")
}

fn holds_template(value: &Value) -> bool {
    match value {
        Value::String(text) => is_template(text),
        Value::Array(items) => items.iter().any(holds_template),
        Value::Object(fields) => fields.values().any(holds_template),
        _ => false,
    }
}

/// The name of the section every template is wrapped in; a user cannot type it.
const ROOT: &str = "\u{0}warden\u{0}";

fn render_with(template: &str, view: &Value, escape: Escape, budget: &Budget) -> Result<String, TemplateError> {
    let (parsed, last_brace) = parse(template)?;
    let scope = Scope { value: view, parent: None, escape, budget };
    let mut sink = Sink { out: String::with_capacity(template.len()), budget };
    match parsed.render_to_writer(&mut sink, &Root(&scope)) {
        Ok(()) => Ok(sink.out + last_brace),
        Err(_) => Err(budget.stopped.get().map_or(TemplateError::OutputTooLarge, Limit::error)),
    }
}

/// The template parsed inside a section of ours, after checking it alone:
/// ramhorns accepts a section left open at the end, and a closing tag of
/// ours after a broken tag could be read as part of it. A `{` ending the
/// template is left out (it would make our `{{/…}}` a `{{{`) and returned,
/// to be written after.
fn parse(template: &str) -> Result<(Template<'static>, &'static str), TemplateError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLong { bytes: template.len() });
    }
    if let Some(at) = template.find("{{=") {
        return Err(syntax(template, "changing the delimiters ({{=…=}}) is not supported", Some(at)));
    }
    if let Err(err) = Template::new(template) {
        return Err(parse_error(template, &err));
    }
    // Once the template parses, a `{` ending it is text: `{{` there would be an unclosed tag.
    let (body, last_brace) = template.strip_suffix('{').map_or((template, ""), |body| (body, "{"));
    let wrapped = Template::new(format!("{{{{#{ROOT}}}}}{body}{{{{/{ROOT}}}}}")).map_err(|err| match err {
        ramhorns::Error::StackOverflow => TemplateError::TooDeep,
        ramhorns::Error::UnclosedSection(name) => {
            syntax(template, &format!("the section {{{{#{name}}}}} is never closed: add {{{{/{name}}}}}"), last_opening(template, &name))
        }
        other => syntax(template, &other.to_string(), None),
    })?;
    Ok((wrapped, last_brace))
}

fn syntax(template: &str, problem: &str, offset: Option<usize>) -> TemplateError {
    TemplateError::Syntax { problem: problem.to_owned(), position: offset.map(|offset| position(template, offset)) }
}

fn position(template: &str, offset: usize) -> Position {
    let before = template.get(..offset).unwrap_or(template);
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    Position { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
}

/// ramhorns's error, said for a rule's author, at the tag where it stops.
fn parse_error(template: &str, err: &ramhorns::Error) -> TemplateError {
    let problem = match err {
        ramhorns::Error::StackOverflow => return TemplateError::TooDeep,
        ramhorns::Error::UnclosedTag => "a tag is not closed: every {{ needs its }}, and every {{{ its }}}".to_owned(),
        ramhorns::Error::UnopenedSection(name) => format!("{{{{/{name}}}}} closes a section that is not open"),
        ramhorns::Error::UnclosedSection(name) => format!("the section {{{{#{name}}}}} is still open here: close it with {{{{/{name}}}}} first"),
        ramhorns::Error::PartialsDisabled => {
            return syntax(template, "partials ({{> name}}) are not supported", template.find("{{>"));
        }
        other => other.to_string(),
    };
    syntax(template, &problem, failing_tag(template, &err.to_string()))
}

/// Where the tag ramhorns stops at starts: the end of the shortest prefix
/// (cut after a `}}`, or whole) that fails as the whole template does, found
/// by bisection, then the `{{` before it.
fn failing_tag(template: &str, error: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let mut cuts: Vec<usize> = (2..=bytes.len()).filter(|&end| &bytes[end - 2..end] == b"}}").collect();
    cuts.push(bytes.len());
    let fails = |cut: usize| Template::new(&template[..cut]).err().is_some_and(|err| err.to_string() == error);
    let cut = cuts[cuts.partition_point(|&cut| !fails(cut)).min(cuts.len() - 1)];
    let start = template[..cut].trim_end_matches('}').rfind("{{")?;
    Some(template[..start].trim_end_matches('{').len())
}

/// The last tag opening a section named `name`.
fn last_opening(template: &str, name: &str) -> Option<usize> {
    template.match_indices("{{").map(|(at, _)| at).filter(|&at| opens(&template[at + 2..], name)).last()
}

fn opens(tag: &str, name: &str) -> bool {
    let Some(rest) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')) else { return false };
    rest.split("}}").next().is_some_and(|names| names.split(' ').any(|part| part == name))
}

/// Why a render stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Iterations,
    Lookups,
    Output,
}

impl Limit {
    fn error(self) -> TemplateError {
        match self {
            Limit::Iterations => TemplateError::TooManyIterations,
            Limit::Lookups => TemplateError::TooManyLookups,
            Limit::Output => TemplateError::OutputTooLarge,
        }
    }
}

/// What one render has spent, and why it stopped.
#[derive(Default)]
struct Budget {
    iterations: Cell<u32>,
    lookup_steps: Cell<u32>,
    written: Cell<usize>,
    stopped: Cell<Option<Limit>>,
}

/// The render must stop (the budget says why).
struct Exhausted;

/// How many bytes a derived value (`asJSON`, a string's `length`) reads for one lookup step.
const BYTES_PER_STEP: usize = 16;

impl Budget {
    fn spend(&self, counter: &Cell<u32>, amount: u32, max: u32, limit: Limit) -> Result<(), Exhausted> {
        let spent = counter.get().saturating_add(amount);
        if spent > max {
            self.stopped.set(Some(limit));
            return Err(Exhausted);
        }
        counter.set(spent);
        Ok(())
    }

    fn iteration(&self) -> Result<(), Exhausted> {
        self.spend(&self.iterations, 1, MAX_SECTION_ITERATIONS, Limit::Iterations)
    }

    fn lookup_step(&self) -> Result<(), Exhausted> {
        self.spend(&self.lookup_steps, 1, MAX_LOOKUP_STEPS, Limit::Lookups)
    }

    fn read(&self, bytes: usize) -> Result<(), Exhausted> {
        let steps = u32::try_from(bytes / BYTES_PER_STEP).unwrap_or(u32::MAX);
        self.spend(&self.lookup_steps, steps, MAX_LOOKUP_STEPS, Limit::Lookups)
    }
}

/// Where a render writes: refuses every write once the budget has stopped
/// the render, or past `MAX_OUTPUT_BYTES`. ramhorns writes whole `str`s.
struct Sink<'a> {
    out: String,
    budget: &'a Budget,
}

impl io::Write for Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.budget.stopped.get().is_some() {
            return Err(io::Error::other("the render has stopped"));
        }
        let written = self.budget.written.get() + bytes.len();
        if written > MAX_OUTPUT_BYTES {
            self.budget.stopped.set(Some(Limit::Output));
            return Err(io::Error::other("too much output"));
        }
        self.out.push_str(std::str::from_utf8(bytes).map_err(io::Error::other)?);
        self.budget.written.set(written);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Stops the render: the sink refuses this write, and ramhorns unwinds.
fn stop<E: Encoder>(encoder: &mut E) -> Result<(), E::Error> {
    encoder.write_unescaped("\u{0}")
}

/// What a template is rendered against: its only field is our section.
struct Root<'a>(&'a Scope<'a>);

impl Content for Root<'_> {
    fn render_field_section<C: ContentSequence, E: Encoder>(
        &self,
        _hash: u64,
        _name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        section.with(self.0).render(encoder)?;
        Ok(true)
    }
}

/// The current item of a section (or the variables), and the enclosing ones.
/// Every lookup is answered here, found or not (a missing variable renders
/// nothing), so ramhorns never looks further.
struct Scope<'a> {
    value: &'a Value,
    parent: Option<&'a Scope<'a>>,
    escape: Escape,
    budget: &'a Budget,
}

impl<'a> Scope<'a> {
    /// `name`'s value as mustache.js finds it: `.` is the current item; a
    /// plain name is a property of the innermost item (an object or a list)
    /// that has it; a dotted name is followed from each item outwards, and
    /// found in the first where its whole path exists.
    fn lookup(&self, name: &str) -> Result<Option<Cow<'a, Value>>, Exhausted> {
        if name == "." {
            return Ok(Some(Cow::Borrowed(self.value)));
        }
        let dotted = name.find('.').is_some_and(|at| at > 0);
        let mut scope = Some(self);
        while let Some(current) = scope {
            self.budget.lookup_step()?;
            let found = if dotted {
                follow(current.value, name, self.budget)?
            } else if current.value.is_object() || current.value.is_array() {
                property(current.value, name, self.budget)?
            } else {
                None
            };
            if found.is_some() {
                return Ok(found);
            }
            scope = current.parent;
        }
        Ok(None)
    }

    fn child<'b>(&'b self, value: &'b Value) -> Scope<'b> {
        Scope { value, parent: Some(self), escape: self.escape, budget: self.budget }
    }

    fn interpolate<E: Encoder>(&self, name: &str, escape: Escape, encoder: &mut E) -> Result<bool, E::Error> {
        match self.lookup(name) {
            Ok(Some(value)) => encoder.write_unescaped(&text(&value, escape))?,
            Ok(None) => {}
            Err(Exhausted) => stop(encoder)?,
        }
        Ok(true)
    }
}

/// A dotted name followed from `value`; `null` or a missing part ends it unfound.
fn follow<'v>(value: &'v Value, name: &str, budget: &Budget) -> Result<Option<Cow<'v, Value>>, Exhausted> {
    let mut current = Cow::Borrowed(value);
    for part in name.split('.') {
        budget.lookup_step()?;
        let next = match current {
            Cow::Borrowed(value) => property(value, part, budget)?,
            Cow::Owned(ref value) => property(value, part, budget)?.map(|found| Cow::Owned(found.into_owned())),
        };
        match next {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// A property as JavaScript has it: an object's key; a list's index,
/// `length` and `asJSON` (Kibana's); a string's `length` (in UTF-16 units).
/// The last two cost a lookup step per [`BYTES_PER_STEP`] they read: a
/// section over them writes nothing that the output bound would count.
fn property<'v>(value: &'v Value, key: &str, budget: &Budget) -> Result<Option<Cow<'v, Value>>, Exhausted> {
    Ok(match value {
        Value::Object(fields) => fields.get(key).map(Cow::Borrowed),
        Value::Array(items) => match key {
            "length" => Some(Cow::Owned(Value::from(items.len()))),
            "asJSON" => {
                let json = to_json(value);
                budget.read(json.len())?;
                Some(Cow::Owned(Value::String(json)))
            }
            _ if key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())) => {
                key.parse::<usize>().ok().and_then(|index| items.get(index)).map(Cow::Borrowed)
            }
            _ => None,
        },
        Value::String(text) if key == "length" => {
            budget.read(text.len())?;
            Some(Cow::Owned(Value::from(text.encode_utf16().count())))
        }
        _ => None,
    })
}

/// JavaScript's truthiness, which decides whether a section renders.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

impl Content for Scope<'_> {
    fn render_field_escaped<E: Encoder>(&self, _hash: u64, name: &str, encoder: &mut E) -> Result<bool, E::Error> {
        self.interpolate(name, self.escape, encoder)
    }

    fn render_field_unescaped<E: Encoder>(&self, _hash: u64, name: &str, encoder: &mut E) -> Result<bool, E::Error> {
        self.interpolate(name, Escape::None, encoder)
    }

    fn render_field_section<C: ContentSequence, E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        let value = match self.lookup(name) {
            Ok(Some(value)) if truthy(&value) => value,
            Ok(_) => return Ok(true),
            Err(Exhausted) => {
                stop(encoder)?;
                return Ok(true);
            }
        };
        let items = match &*value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        for item in items {
            if self.budget.iteration().is_err() {
                stop(encoder)?;
                return Ok(true);
            }
            match item {
                // `true` renders once, in the same scope.
                Value::Bool(true) if !value.is_array() => section.render(encoder)?,
                item => section.with(&self.child(item)).render(encoder)?,
            }
        }
        Ok(true)
    }

    fn render_field_inverse<C: ContentSequence, E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        let renders = match self.lookup(name) {
            Ok(Some(value)) => !truthy(&value) || value.as_array().is_some_and(Vec::is_empty),
            Ok(None) => true,
            Err(Exhausted) => {
                stop(encoder)?;
                return Ok(true);
            }
        };
        if renders {
            if self.budget.iteration().is_err() {
                stop(encoder)?;
                return Ok(true);
            }
            section.render(encoder)?;
        }
        Ok(true)
    }
}

/// A value as `{{x}}` writes it: Kibana's text of it, escaped (numbers never are).
fn text(value: &Value, escape: Escape) -> String {
    match value {
        Value::Number(n) => js_number(n),
        other => escape.apply(&js_string(other)),
    }
}

/// `String(value)` in Kibana's renderer: objects as JSON, lists joined with commas.
fn js_string(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed(""),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => Cow::Owned(js_number(n)),
        Value::String(text) => Cow::Borrowed(text),
        Value::Array(items) => Cow::Owned(items.iter().map(js_string).collect::<Vec<_>>().join(",")),
        Value::Object(_) => Cow::Owned(to_json(value)),
    }
}

/// `JSON.stringify(value)`: serde_json's, with JavaScript's numbers.
fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    // Writing a `Value` to memory cannot fail, and writes UTF-8.
    let _ = value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, JsNumbers));
    String::from_utf8(out).unwrap_or_default()
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `String(n)` in JavaScript.
fn js_number(n: &serde_json::Number) -> String {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) if u <= MAX_SAFE_INTEGER => u.to_string(),
        (_, Some(i)) if i.unsigned_abs() <= MAX_SAFE_INTEGER => i.to_string(),
        _ => n.as_f64().map_or_else(|| n.to_string(), js_f64),
    }
}

/// JavaScript's `Number.prototype.toString`: shortest digits, with an
/// exponent from 1e21 up and below 1e-6.
fn js_f64(n: f64) -> String {
    if n == 0.0 {
        return "0".to_owned();
    }
    if (1e-6..1e21).contains(&n.abs()) {
        return format!("{n}");
    }
    let text = format!("{n:e}");
    if text.contains("e-") { text } else { text.replacen('e', "e+", 1) }
}

/// serde_json's JSON writer with JavaScript's numbers (`1.0` is `1`).
struct JsNumbers;

impl serde_json::ser::Formatter for JsNumbers {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(js_f64(value).as_bytes())
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        writer.write_all(js_number(&value.into()).as_bytes())
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        writer.write_all(js_number(&value.into()).as_bytes())
    }
}

impl Escape {
    fn apply(self, text: &str) -> String {
        match self {
            Escape::None => text.to_owned(),
            Escape::Json => escape_json(text),
            Escape::Markdown => text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
                if "\\|`*_{}[]()#+-.!".contains(c) {
                    out.push('\\');
                }
                out.push(c);
                out
            }),
            Escape::Html => text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    '/' => out.push_str("&#x2F;"),
                    '`' => out.push_str("&#x60;"),
                    '=' => out.push_str("&#x3D;"),
                    c => out.push(c),
                }
                out
            }),
        }
    }
}

/// `JSON.stringify(text)` without its quotes: `"`, `\` and the control
/// characters escaped, everything else as it is.
fn escape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The variables as Kibana's renderer sees them: a key holding dots also
/// answers as nested objects, merged with what is there (`convertDotVariables`).
fn kibana_view(variables: &Value) -> Cow<'_, Value> {
    if !has_dotted_key(variables) {
        return Cow::Borrowed(variables);
    }
    let mut view = variables.clone();
    expand_dotted_keys(&mut view);
    Cow::Owned(view)
}

fn has_dotted_key(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.iter().any(|(key, field)| key.contains('.') || has_dotted_key(field)),
        Value::Array(items) => items.iter().any(has_dotted_key),
        _ => false,
    }
}

fn expand_dotted_keys(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(expand_dotted_keys),
        Value::Object(fields) => {
            fields.values_mut().for_each(expand_dotted_keys);
            let dotted: Vec<(String, Value)> = fields.iter().filter(|(key, _)| key.contains('.')).map(|(k, v)| (k.clone(), v.clone())).collect();
            for (key, field) in dotted {
                let nested = key.rsplit('.').fold(field, |inner, part| Value::Object(Map::from_iter([(part.to_owned(), inner)])));
                if let Value::Object(nested) = nested {
                    merge(fields, nested);
                }
            }
        }
        _ => {}
    }
}

/// lodash's `merge` for JSON: objects merged key by key, anything else replaced.
fn merge(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(value)) => merge(inner, value),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn variables() -> Value {
        json!({
            "rule": { "id": "r-1", "name": "Malware on hosts", "tags": ["edr", "prod"] },
            "context": {
                "host": "web-01",
                "count": 3,
                "ratio": 1.5,
                "whole": 2.0,
                "huge": 1e21,
                "tiny": 1.5e-7,
                "zero": 0,
                "empty": "",
                "yes": true,
                "no": false,
                "nothing": null,
                "list": ["a", "b", "c"],
                "none": [],
                "mixed": [1, null, "x", [2, 3], {"k": "v"}],
                "obj": { "a": 1, "b": "two" },
                "alerts": [
                    { "id": "al-1", "host": { "name": "web-01" } },
                    { "id": "al-2", "host": { "name": "db-01" }, "rule": { "id": "own" } },
                ],
            },
            "alert": { "id": "al-9", "kibana.alert.severity": "high" },
            "kibana.alert.rule.uuid": "u-1",
        })
    }

    #[test]
    fn renders_as_kibana() {
        let cases: &[(&str, &str, &str)] = &[
            // plain variables and dotted paths
            ("plain", "{{rule.name}}", "Malware on hosts"),
            ("spaces inside the tag", "[{{ context.host }}]", "[web-01]"),
            ("number", "{{context.count}} hosts", "3 hosts"),
            ("float", "{{context.ratio}}", "1.5"),
            ("whole float as JavaScript prints it", "{{context.whole}}", "2"),
            ("large float", "{{context.huge}}", "1e+21"),
            ("small float", "{{context.tiny}}", "1.5e-7"),
            ("boolean", "{{context.yes}}/{{context.no}}", "true/false"),
            ("list index", "{{context.list.1}}", "b"),
            ("list length", "{{context.list.length}}", "3"),
            ("string length", "{{context.host.length}}", "6"),
            ("dotted key as nested objects", "{{kibana.alert.rule.uuid}} {{alert.kibana.alert.severity}}", "u-1 high"),
            ("dotted key as it is", "{{alert.id}}", "al-9"),
            // missing and empty values render as nothing
            ("missing variable", "a{{context.missing}}b", "ab"),
            ("missing root", "a{{nope.deeper.still}}b", "ab"),
            ("null", "a{{context.nothing}}b", "ab"),
            ("through a string", "a{{context.host.name}}b", "ab"),
            // lists and objects as Kibana renders them
            ("list joined with commas", "{{context.list}}", "a,b,c"),
            ("list of mixed items", "{{{context.mixed}}}", r#"1,,x,2,3,{"k":"v"}"#),
            ("object as JSON", "{{{context.obj}}}", r#"{"a":1,"b":"two"}"#),
            ("list as JSON", "{{{context.list.asJSON}}}", r#"["a","b","c"]"#),
            ("empty list", "[{{context.none}}]", "[]"),
            // sections
            ("section over a list", "{{#context.list}}<{{.}}>{{/context.list}}", "<a><b><c>"),
            ("section over objects", "{{#context.alerts}}{{id}}={{host.name}};{{/context.alerts}}", "al-1=web-01;al-2=db-01;"),
            (
                "enclosing scopes are looked up",
                "{{#context.alerts}}{{id}}@{{context.host}}/{{rule.id}} {{/context.alerts}}",
                "al-1@web-01/r-1 al-2@web-01/own ",
            ),
            ("section over an object", "{{#context.obj}}{{a}}-{{b}}{{/context.obj}}", "1-two"),
            ("section over true", "{{#context.yes}}{{context.host}}{{/context.yes}}", "web-01"),
            ("section over a string", "{{#context.host}}<{{.}}>{{/context.host}}", "<web-01>"),
            ("false section", "a{{#context.no}}x{{/context.no}}b", "ab"),
            ("zero is false", "a{{#context.zero}}x{{/context.zero}}b", "ab"),
            ("empty string is false", "a{{#context.empty}}x{{/context.empty}}b", "ab"),
            ("null is false", "a{{#context.nothing}}x{{/context.nothing}}b", "ab"),
            ("missing section", "a{{#context.missing}}x{{/context.missing}}b", "ab"),
            ("empty list section", "a{{#context.none}}x{{/context.none}}b", "ab"),
            // al-2's own `rule` has no `tags`: mustache.js then looks further out.
            (
                "nested sections",
                "{{#context.alerts}}{{#rule.tags}}{{id}}:{{.}} {{/rule.tags}}{{/context.alerts}}",
                "al-1:edr al-1:prod al-2:edr al-2:prod ",
            ),
            // inverted sections
            ("inverted over an empty list", "{{^context.none}}none{{/context.none}}", "none"),
            ("inverted over a missing value", "{{^context.missing}}none{{/context.missing}}", "none"),
            ("inverted over false", "{{^context.no}}no{{/context.no}}", "no"),
            ("inverted over a list", "a{{^context.list}}none{{/context.list}}b", "ab"),
            ("nested inverted sections", "a{{^context.nothing}}{{^rule}}x{{/rule}}y{{/context.nothing}}b", "ayb"),
            // comments and whitespace
            ("comment", "a{{! not shown }}b", "ab"),
            ("trailing whitespace kept", "{{context.host}} \n", "web-01 \n"),
            ("text around tags kept", "  {{context.host}}\n\n", "  web-01\n\n"),
            ("braces around tags kept", "{ {{context.host}} }{", "{ web-01 }{"),
            ("brace after a triple-stache", "{{{context.host}}}}{", "web-01}{"),
        ];
        for (what, template, expected) in cases {
            assert_eq!(render(template, &variables(), Escape::None).as_deref(), Ok(*expected), "{what}: {template}");
        }
    }

    #[test]
    fn strings_without_tags_are_unchanged() {
        for text in ["", "plain text", "a { b } c", "json {\"a\": 1}", "}} {", "one { brace {"] {
            assert_eq!(render(text, &variables(), Escape::Json).as_deref(), Ok(text));
        }
    }

    #[test]
    fn escapes_as_kibana() {
        let cases: &[(&str, Escape, &str, &str)] = &[
            ("json: quotes", Escape::Json, r#"say "hi""#, r#"say \"hi\""#),
            ("json: backslash", Escape::Json, r"C:\temp\x", r"C:\\temp\\x"),
            ("json: newlines and tabs", Escape::Json, "a\nb\r\tc", r"a\nb\r\tc"),
            ("json: control characters", Escape::Json, "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}", "\\u0000\\u0001\\b\\f\\u001f\u{7f}"),
            ("json: unicode as it is", Escape::Json, "héllo ✓ 😀 \u{2028}", "héllo ✓ 😀 \u{2028}"),
            ("json: html as it is", Escape::Json, "<b>&</b>", "<b>&</b>"),
            ("markdown", Escape::Markdown, r"*a_b* [c](d) #1 `e` {f} g+h-i.j! k|l \", r"\*a\_b\* \[c\]\(d\) \#1 \`e\` \{f\} g\+h\-i\.j\! k\|l \\"),
            ("markdown: plain text as it is", Escape::Markdown, "web 01, ok: yes", "web 01, ok: yes"),
            ("html", Escape::Html, r#"<a href="x">'&'</a>=`"#, "&lt;a href&#x3D;&quot;x&quot;&gt;&#39;&amp;&#39;&lt;&#x2F;a&gt;&#x3D;&#x60;"),
            ("none", Escape::None, "\"<*>\"\n", "\"<*>\"\n"),
        ];
        for (what, escape, value, expected) in cases {
            let variables = json!({ "v": value });
            assert_eq!(render("{{v}}", &variables, *escape).as_deref(), Ok(*expected), "{what}");
            assert_eq!(render("{{{v}}}", &variables, *escape).as_deref(), Ok(*value), "{what}: triple-stache never escapes");
            assert_eq!(render("{{& v}}", &variables, *escape).as_deref(), Ok(*value), "{what}: ampersand never escapes");
        }
        let variables = json!({ "n": -1.5, "list": ["a\"b", "c*d"], "obj": { "k": "x\"y" } });
        assert_eq!(render("{{n}}", &variables, Escape::Markdown).as_deref(), Ok("-1.5"), "numbers are not escaped");
        assert_eq!(render("{{list}}", &variables, Escape::Json).as_deref(), Ok(r#"a\"b,c*d"#));
        assert_eq!(render("{{list}}", &variables, Escape::Markdown).as_deref(), Ok(r#"a"b,c\*d"#));
        assert_eq!(render("{{obj}}", &variables, Escape::Json).as_deref(), Ok(r#"{\"k\":\"x\\\"y\"}"#), "an object's JSON is escaped whole");
    }

    #[test]
    fn a_webhook_body_cannot_be_injected() {
        let hostile = "x\", \"admin\": true, \"y\": \"\\\n\u{1}}";
        let variables = json!({ "context": { "host": hostile } });
        let params = Map::from_iter([("body".to_owned(), json!(r#"{"host": "{{context.host}}"}"#))]);

        let rendered = render_action_params(WEBHOOK, &params, &variables).unwrap();

        let body: Value = serde_json::from_str(rendered["body"].as_str().unwrap()).unwrap();
        let fields = body.as_object().unwrap();
        assert_eq!(fields.len(), 1, "{body}");
        assert_eq!(fields["host"], hostile);
    }

    #[test]
    fn params_are_rendered_per_type() {
        let variables = json!({ "rule": { "name": "a*b" }, "context": { "host": "h\"1", "to": "ops@example.com" } });
        let params = |pairs: Value| pairs.as_object().cloned().unwrap();

        let webhook = render_action_params(WEBHOOK, &params(json!({ "body": "{\"r\": \"{{rule.name}} {{context.host}}\"}" })), &variables).unwrap();
        assert_eq!(webhook["body"], r#"{"r": "a*b h\"1"}"#);
        let not_a_string = params(json!({ "body": { "a": "{{rule.name}}" } }));
        assert_eq!(render_action_params(WEBHOOK, &not_a_string, &variables).unwrap(), not_a_string, "only a string body is a template");

        let email = render_action_params(
            EMAIL,
            &params(json!({
                "to": ["{{context.to}}", "lead@example.com"],
                "cc": [],
                "subject": "[{{rule.name}}] on {{context.host}}",
                "message": "**{{rule.name}}** on {{context.host}}",
                "messageHTML": "<p>{{context.host}}</p>",
                "replyTo": "{{context.to}}",
            })),
            &variables,
        )
        .unwrap();
        assert_eq!(email["to"], json!(["ops@example.com", "lead@example.com"]));
        assert_eq!(email["cc"], json!([]));
        assert_eq!(email["subject"], "[a*b] on h\"1", "the subject is not escaped");
        assert_eq!(email["message"], r#"**a\*b** on h"1"#, "the message is markdown");
        assert_eq!(email["messageHTML"], "<p>h&quot;1</p>");
        assert_eq!(email["replyTo"], "ops@example.com");

        let log =
            render_action_params(SERVER_LOG, &params(json!({ "message": "{{rule.name}}: {{context.host}}", "level": "warn" })), &variables).unwrap();
        assert_eq!(log, params(json!({ "message": "a*b: h\"1", "level": "warn" })));

        for other in [warden_core::actions::CASES, ".slack", "unknown"] {
            let untouched = params(json!({ "subAction": "run", "subActionParams": { "title": "{{rule.name}}", "n": 1 } }));
            assert_eq!(render_action_params(other, &untouched, &variables).unwrap(), untouched, "{other}");
        }
    }

    #[test]
    fn errors_name_the_param() {
        let params = Map::from_iter([
            ("to".to_owned(), json!(["a@example.com", "{{#x}}"])),
            ("subject".to_owned(), json!("ok")),
            ("message".to_owned(), json!("fine")),
        ]);
        let err = render_action_params(EMAIL, &params, &json!({})).unwrap_err();
        assert_eq!(err.to_string(), "[to[1]]: bad template syntax at line 1, column 1: the section {{#x}} is never closed: add {{/x}}");
    }

    fn error_of(template: &str) -> TemplateError {
        render(template, &variables(), Escape::None).unwrap_err()
    }

    #[test]
    fn syntax_errors_say_where() {
        let cases: &[(&str, &str, (usize, usize))] = &[
            ("Hi {{#context.list}}\n{{.}}", "the section {{#context.list}} is never closed", (1, 4)),
            ("a\n  {{#x}}{{/y}}", "the section {{#x}} is still open here: close it with {{/x}} first", (2, 9)),
            ("ok {{x}}\nthen {{/y}}", "{{/y}} closes a section that is not open", (2, 6)),
            ("ok {{x}} and {{y", "a tag is not closed", (1, 14)),
            ("é {{{x}} z", "a tag is not closed", (1, 3)),
            ("{{> header}}", "partials ({{> name}}) are not supported", (1, 1)),
            ("x {{=<% %>=}}", "changing the delimiters", (1, 3)),
        ];
        for (template, problem, at) in cases {
            match error_of(template) {
                TemplateError::Syntax { problem: got, position } => {
                    assert!(got.starts_with(problem), "{template:?}: {got}");
                    assert_eq!(position.map(|p| (p.line, p.column)), Some(*at), "{template:?}");
                }
                other => panic!("{template:?}: {other}"),
            }
        }
        assert_eq!(
            error_of("{{#a}}{{/b}}").to_string(),
            "bad template syntax at line 1, column 7: the section {{#a}} is still open here: close it with {{/a}} first"
        );
    }

    #[test]
    fn bounds_trip_with_clear_errors() {
        let long = format!("{{{{x}}}}{}", "a".repeat(MAX_TEMPLATE_BYTES));
        assert_eq!(error_of(&long), TemplateError::TooLong { bytes: MAX_TEMPLATE_BYTES + 5 });
        assert!(error_of(&long).to_string().starts_with("too large"));

        let nest = |depth: usize| format!("{}x{}", "{{#context.yes}}".repeat(depth), "{{/context.yes}}".repeat(depth));
        assert_eq!(render(&nest(MAX_SECTION_DEPTH), &variables(), Escape::None).as_deref(), Ok("x"));
        assert_eq!(error_of(&nest(MAX_SECTION_DEPTH + 1)), TemplateError::TooDeep);
        assert_eq!(error_of(&nest(100)), TemplateError::TooDeep);

        // Sections over a 1,000-item list, nested: 1,000^n bodies, refused at once.
        let items = json!({ "a": vec![1; 1000] });
        let started = Instant::now();
        let err = render(&format!("{}x{}", "{{#a}}".repeat(8), "{{/a}}".repeat(8)), &items, Escape::None).unwrap_err();
        assert_eq!(err, TemplateError::TooManyIterations);
        assert!(err.to_string().starts_with("too costly"));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

        // 1,000 bodies of 1,000 lookups each.
        let err = render(&format!("{{{{#a}}}}{}{{{{/a}}}}", "{{b.c}}".repeat(1000)), &items, Escape::None).unwrap_err();
        assert_eq!(err, TemplateError::TooManyLookups);
        // Sections that write nothing over values that take long to compute.
        let long = json!({ "a": vec![1; 1000], "s": "x".repeat(100_000), "l": vec!["x"; 5_000] });
        for template in ["{{#a}}{{#s.length}}{{/s.length}}{{/a}}", "{{#a}}{{^l.asJSON}}{{/l.asJSON}}{{/a}}"] {
            assert_eq!(render(template, &long, Escape::None), Err(TemplateError::TooManyLookups), "{template}");
        }

        let big = json!({ "a": vec![1; 1000], "big": "x".repeat(10_000) });
        let err = render("{{#a}}{{big}}{{/a}}", &big, Escape::None).unwrap_err();
        assert_eq!(err, TemplateError::OutputTooLarge);
        assert!(err.to_string().starts_with("too large"));
    }

    #[test]
    fn one_budget_covers_every_param() {
        let variables = json!({ "a": vec![1; 6000] });
        let params = Map::from_iter([("message".to_owned(), json!("{{#a}}.{{/a}}")), ("level".to_owned(), json!("{{#a}}.{{/a}}"))]);
        let err = render_action_params(SERVER_LOG, &params, &variables).unwrap_err();
        // "level" renders first (6,000 bodies), "message" passes the 10,000.
        assert_eq!(err, TemplateError::TooManyIterations.in_param("message"));
    }

    proptest::proptest! {
        /// Any template, however broken, renders or is refused: never a panic.
        #[test]
        fn any_template_renders_or_is_refused(template in "([{}#^/&!>. \n]|a|b|context|list|\\{\\{|\\}\\}){0,60}") {
            for escape in [Escape::None, Escape::Json, Escape::Markdown, Escape::Html] {
                let _ = render(&template, &variables(), escape);
            }
        }

        /// Whatever an agent reports as its host name, a webhook body gets one key holding it.
        #[test]
        fn no_value_escapes_its_json_string(host in "(\\PC|[\"\\\\\n\r\t\u{0}-\u{1f}\u{2028}{}])*") {
            let variables = json!({ "context": { "host": host } });
            let params = Map::from_iter([("body".to_owned(), json!(r#"{"host": "{{context.host}}", "n": {{context.n}}0}"#))]);
            let rendered = render_action_params(WEBHOOK, &params, &variables).unwrap();
            let body: Value = serde_json::from_str(rendered["body"].as_str().unwrap()).unwrap();
            proptest::prop_assert_eq!(body, json!({ "host": host, "n": 0 }));
        }
    }
}
