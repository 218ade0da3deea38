//! The responder console's command line (`mde-and-console.md` §3): the
//! commands each agent type offers, how a line is split into a command and
//! its `--arguments` (quotes, `--name=value`, `\-\-` for a literal `--`),
//! Kibana's validation messages, the `--help` text, and the API request a
//! valid line becomes. The SPA's console validates with this before it sends.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::response_actions::{
    ActionDetails, Canceller, EndpointAuthzResponse, EndpointCapability, Outcome, ResponseAgentType, ResponseCommand, agent_refusal,
    agent_type_license_refusal, cancel_refusal, command_refusal, endpoint_authz, host_outcome,
};

/// Longest line the console accepts, in characters.
pub const MAX_LINE_CHARS: usize = 10_000;
/// Most arguments on one line.
pub const MAX_ARGS: usize = 32;

/// What an argument's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// Text (any non-empty value).
    Text,
    /// A whole number greater than zero.
    Positive,
    /// A duration such as `37m`, `2h`, `30s`.
    Duration,
    /// No value: present or not.
    Flag,
}

/// One `--argument` of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: &'static str,
    pub about: &'static str,
    pub required: bool,
    pub kind: ArgKind,
}

/// A console command: its name, help, arguments and the API command it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub about: &'static str,
    /// `None` for `status`, which reads instead of sending an action.
    pub command: Option<ResponseCommand>,
    pub args: &'static [ArgSpec],
    /// Arguments of which exactly one must be given.
    pub one_of: &'static [&'static str],
    pub example: &'static str,
}

const COMMENT: ArgSpec = ArgSpec { name: "comment", about: "A comment to go along with the action", required: false, kind: ArgKind::Text };
const PID_KILL: ArgSpec = ArgSpec { name: "pid", about: "A PID representing the process to kill", required: false, kind: ArgKind::Positive };
const ENTITY_KILL: ArgSpec =
    ArgSpec { name: "entityId", about: "An entity id representing the process to kill", required: false, kind: ArgKind::Text };
const PID_SUSPEND: ArgSpec = ArgSpec { name: "pid", about: "A PID representing the process to suspend", required: false, kind: ArgKind::Positive };
const ENTITY_SUSPEND: ArgSpec =
    ArgSpec { name: "entityId", about: "An entity id representing the process to suspend", required: false, kind: ArgKind::Text };

/// The commands of Elastic Defend's console (Warden's own agents), in help order.
pub const ENDPOINT_COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "isolate",
        about: "Isolate the host",
        command: Some(ResponseCommand::Isolate),
        args: &[COMMENT],
        one_of: &[],
        example: r#"isolate --comment "isolate this host""#,
    },
    CommandSpec {
        name: "release",
        about: "Release the host",
        command: Some(ResponseCommand::Unisolate),
        args: &[COMMENT],
        one_of: &[],
        example: r#"release --comment "release this host""#,
    },
    CommandSpec { name: "status", about: "Show host status information", command: None, args: &[], one_of: &[], example: "status" },
    CommandSpec {
        name: "processes",
        about: "Show all running processes",
        command: Some(ResponseCommand::RunningProcesses),
        args: &[COMMENT],
        one_of: &[],
        example: r#"processes --comment "get the processes""#,
    },
    CommandSpec {
        name: "kill-process",
        about: "Kill/terminate a process",
        command: Some(ResponseCommand::KillProcess),
        args: &[PID_KILL, ENTITY_KILL, COMMENT],
        one_of: &["pid", "entityId"],
        example: r#"kill-process --pid 123 --comment "kill this process""#,
    },
    CommandSpec {
        name: "suspend-process",
        about: "Temporarily suspend a process",
        command: Some(ResponseCommand::SuspendProcess),
        args: &[PID_SUSPEND, ENTITY_SUSPEND, COMMENT],
        one_of: &["pid", "entityId"],
        example: r#"suspend-process --pid 123 --comment "suspend the process""#,
    },
    CommandSpec {
        name: "get-file",
        about: "Retrieve a file from the host",
        command: Some(ResponseCommand::GetFile),
        args: &[ArgSpec { name: "path", about: "The full file path to be retrieved", required: true, kind: ArgKind::Text }, COMMENT],
        one_of: &[],
        example: r#"get-file --path "/full/path/to/file.txt" --comment "Possible malware""#,
    },
    CommandSpec {
        name: "execute",
        about: "Execute a command on the host",
        command: Some(ResponseCommand::Execute),
        args: &[
            ArgSpec { name: "command", about: "A shell command to run on the host", required: true, kind: ArgKind::Text },
            ArgSpec {
                name: "timeout",
                about: "The timeout in units of time (h for hours, m for minutes, s for seconds) for the endpoint to wait for the script to complete. Example: 37m. If not given, it defaults to 4 hours.",
                required: false,
                kind: ArgKind::Duration,
            },
            COMMENT,
        ],
        one_of: &[],
        example: r#"execute --command "ls -al" --timeout 2s --comment "Get list of all files""#,
    },
    CommandSpec {
        name: "upload",
        about: "Upload a file to the host",
        command: Some(ResponseCommand::Upload),
        args: &[
            ArgSpec { name: "file", about: "The file that will be sent to the host", required: true, kind: ArgKind::Flag },
            ArgSpec { name: "overwrite", about: "Overwrite the file on the host if it already exists", required: false, kind: ArgKind::Flag },
            COMMENT,
        ],
        one_of: &[],
        example: r#"upload --file --overwrite --comment "script to fix registry""#,
    },
    CommandSpec {
        name: "scan",
        about: "Scan the host for malware",
        command: Some(ResponseCommand::Scan),
        args: &[
            ArgSpec { name: "path", about: "The absolute path to a file or directory to be scanned", required: true, kind: ArgKind::Text },
            COMMENT,
        ],
        one_of: &[],
        example: r#"scan --path "/full/path/to/folder" --comment "Scan folder for malware""#,
    },
    CommandSpec {
        name: "runscript",
        about: "Run a script on the host",
        command: Some(ResponseCommand::Runscript),
        args: &[
            ArgSpec { name: "script", about: "The script to run, from the scripts library", required: true, kind: ArgKind::Text },
            ArgSpec { name: "inputParams", about: "Input the script takes", required: false, kind: ArgKind::Text },
            ArgSpec { name: "timeout", about: "How long the script may run, e.g. 10m (default 4 hours)", required: false, kind: ArgKind::Duration },
            COMMENT,
        ],
        one_of: &[],
        example: r#"runscript --script "triage" --inputParams "--days 3""#,
    },
    CommandSpec {
        name: "cancel",
        about: "Cancel an ongoing action on the host",
        command: Some(ResponseCommand::Cancel),
        args: &[ArgSpec { name: "action", about: "The response action to cancel", required: true, kind: ArgKind::Text }, COMMENT],
        one_of: &[],
        example: r#"cancel --action "action-123-456-789""#,
    },
];

/// The commands of Microsoft Defender for Endpoint hosts.
pub const MDE_COMMANDS: &[CommandSpec] = &[
    ENDPOINT_COMMANDS[0],
    ENDPOINT_COMMANDS[1],
    CommandSpec {
        name: "runscript",
        about: "Run a script on the host",
        command: Some(ResponseCommand::Runscript),
        args: &[
            ArgSpec { name: "ScriptName", about: "Script name in Files Library", required: true, kind: ArgKind::Text },
            ArgSpec { name: "Args", about: "Command line arguments", required: false, kind: ArgKind::Text },
            COMMENT,
        ],
        one_of: &[],
        example: r#"runscript --ScriptName="CloudScript1.ps1" --Args="--Verbose true""#,
    },
    ENDPOINT_COMMANDS[11],
];

/// The console's own commands.
pub const BUILTIN_COMMANDS: &[(&str, &str)] = &[("help", "List all available commands"), ("clear", "Clear console screen")];

/// The commands an agent type offers.
pub fn commands(agent_type: ResponseAgentType) -> &'static [CommandSpec] {
    match agent_type {
        ResponseAgentType::MicrosoftDefenderEndpoint => MDE_COMMANDS,
        _ => ENDPOINT_COMMANDS,
    }
}

/// A line split into its command name and arguments (each `--name` with
/// its value, if it has one), before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub name: String,
    pub args: Vec<(String, Option<String>)>,
}

/// Splits a line as Kibana's console does: the first word is the command,
/// then `--name value`, `--name=value` or `--name` alone; values may be
/// quoted ('…' or "…"); `\-\-` stands for a literal `--` inside a value.
pub fn split(input: &str) -> Result<Line, String> {
    if input.chars().count() > MAX_LINE_CHARS {
        return Err(format!("The command is too long: at most {MAX_LINE_CHARS} characters"));
    }
    let words = words(input.trim())?;
    let mut words = words.into_iter();
    let name = words.next().map(|w| w.text).unwrap_or_default();
    let mut args: Vec<(String, Option<String>)> = Vec::new();
    for word in words {
        if let Some(flag) = word.text.strip_prefix("--").filter(|_| !word.quoted) {
            if args.len() >= MAX_ARGS {
                return Err(format!("Too many arguments: at most {MAX_ARGS}"));
            }
            match flag.split_once('=') {
                Some((flag, value)) => args.push((flag.to_owned(), Some(unescape(value)))),
                None => args.push((flag.to_owned(), None)),
            }
        } else {
            let value = unescape(&word.text);
            match args.last_mut() {
                Some((_, slot @ None)) => *slot = Some(value),
                Some((_, Some(existing))) => {
                    existing.push(' ');
                    existing.push_str(&value);
                }
                None => return Err(format!("Unsupported text/command: the text you entered {input} is unsupported! Type help for assistance.")),
            }
        }
    }
    Ok(Line { name, args })
}

struct Word {
    text: String,
    quoted: bool,
}

/// Words separated by white space; a quoted stretch is one word (quotes
/// removed); `--name="a b"` keeps its name and the quoted value together.
fn words(input: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_quote: Option<char> = None;
    let mut started = false;
    for c in input.chars() {
        match in_quote {
            Some(q) if c == q => in_quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                in_quote = Some(c);
                started = true;
                // A whole word in quotes is a value even if it starts with --.
                quoted = current.is_empty();
            }
            None if c.is_whitespace() => {
                if started {
                    words.push(Word { text: std::mem::take(&mut current), quoted });
                    started = false;
                    quoted = false;
                }
            }
            None => {
                current.push(c);
                started = true;
            }
        }
    }
    if in_quote.is_some() {
        return Err("A quote is not closed".into());
    }
    if started {
        words.push(Word { text: current, quoted });
    }
    Ok(words)
}

fn unescape(value: &str) -> String {
    value.replace("\\-\\-", "--")
}

/// A line that passed validation, as the API takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCommand {
    pub spec: CommandSpec,
    pub comment: Option<String>,
    /// The request's `parameters` (for `runscript` on endpoint agents the
    /// script's *name*, which the console turns into its id).
    pub parameters: Value,
}

/// What the console does with a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Help,
    Clear,
    /// `<command> --help`.
    CommandHelp(CommandSpec),
    Command(ParsedCommand),
}

/// Reads a line for a host of `agent_type`, with Kibana's messages for what is wrong.
pub fn parse(input: &str, agent_type: ResponseAgentType) -> Result<Input, String> {
    let line = split(input)?;
    match line.name.as_str() {
        "" => return Err("Type a command, or help for the list".into()),
        "help" => return Ok(Input::Help),
        "clear" => return Ok(Input::Clear),
        _ => {}
    }
    let Some(spec) = commands(agent_type).iter().find(|c| c.name == line.name).copied() else {
        if agent_type == ResponseAgentType::MicrosoftDefenderEndpoint && ENDPOINT_COMMANDS.iter().any(|c| c.name == line.name) {
            return Err(format!("Support for {} is not currently available for Microsoft Defender for Endpoint.", line.name));
        }
        return Err(format!("Unknown command {}", line.name));
    };
    if line.args.iter().any(|(name, _)| name == "help") {
        return Ok(Input::CommandHelp(spec));
    }
    validate(&spec, &line.args)?;
    let value = |name: &str| line.args.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.clone());
    let has = |name: &str| line.args.iter().any(|(n, _)| n == name);
    let parameters = match (spec.name, agent_type) {
        ("kill-process" | "suspend-process", _) => match value("pid") {
            Some(pid) => json!({"pid": pid.parse::<u64>().unwrap_or_default()}),
            None => json!({"entity_id": value("entityId")}),
        },
        ("get-file" | "scan", _) => json!({"path": value("path")}),
        ("execute", _) => match value("timeout") {
            Some(timeout) => json!({"command": value("command"), "timeout": duration_seconds(&timeout).unwrap_or_default()}),
            None => json!({"command": value("command")}),
        },
        ("upload", _) => json!({"overwrite": has("overwrite")}),
        ("runscript", ResponseAgentType::MicrosoftDefenderEndpoint) => json!({"scriptName": value("ScriptName"), "args": value("Args")}),
        ("runscript", _) => {
            let mut params = json!({"scriptName": value("script"), "scriptInput": value("inputParams")});
            if let Some(timeout) = value("timeout") {
                params["timeout"] = json!(duration_seconds(&timeout).unwrap_or_default());
            }
            params
        }
        ("cancel", _) => json!({"id": value("action")}),
        _ => json!({}),
    };
    Ok(Input::Command(ParsedCommand { spec, comment: value("comment"), parameters }))
}

/// Kibana's console checks, in its order.
fn validate(spec: &CommandSpec, args: &[(String, Option<String>)]) -> Result<(), String> {
    let known: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
    if let Some((name, _)) = args.iter().find(|(name, _)| !known.contains(&name.as_str())) {
        if spec.args.is_empty() {
            return Err("Command does not support any arguments".into());
        }
        return Err(format!("Unsupported argument: --{name}"));
    }
    for (i, (name, _)) in args.iter().enumerate() {
        if args[..i].iter().any(|(other, _)| other == name) {
            return Err(format!("Argument can only be used once: --{name}"));
        }
    }
    for (name, value) in args {
        let Some(arg) = spec.args.iter().find(|a| a.name == name) else { continue };
        match (arg.kind, value.as_deref().map(str::trim)) {
            (ArgKind::Flag, Some(_)) => return Err(format!("Argument --{name} does not take a value")),
            (ArgKind::Flag, None) => {}
            (_, None | Some("")) => return Err(format!("Argument --{name} must have a value")),
            (ArgKind::Positive, Some(text)) => match text.parse::<i64>() {
                Ok(n) if n > 0 => {}
                Ok(_) => return Err(format!("Argument --{name} value must be greater than zero")),
                Err(_) => return Err(format!("Argument --{name} value must be a number")),
            },
            (ArgKind::Duration, Some(text)) => {
                if duration_seconds(text).is_none() {
                    return Err(format!("Invalid argument value: --{name}. Use a number and a unit: h, m or s (e.g. 37m)"));
                }
            }
            (ArgKind::Text, Some(_)) => {}
        }
    }
    let missing: Vec<String> =
        spec.args.iter().filter(|a| a.required && !args.iter().any(|(n, _)| n == a.name)).map(|a| format!("--{}", a.name)).collect();
    match missing.as_slice() {
        [] => {}
        [one] => return Err(format!("Missing required argument: {one}")),
        many => return Err(format!("Missing required arguments: {}", many.join(", "))),
    }
    if !spec.one_of.is_empty() {
        let given = spec.one_of.iter().filter(|name| args.iter().any(|(n, _)| n == *name)).count();
        let list = spec.one_of.iter().map(|n| format!("--{n}")).collect::<Vec<_>>().join(", ");
        if given == 0 {
            return Err(format!("This command requires one of the following arguments: {list}"));
        }
        if given > 1 {
            return Err(format!("This command requires only one of the following arguments: {list}"));
        }
    }
    Ok(())
}

/// `37m`, `2h`, `30s` (or a bare number of seconds) in seconds; at most a week.
pub fn duration_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = n.checked_mul(match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    })?;
    (seconds <= 7 * 86_400).then_some(seconds)
}

/// `<command> --help`: About, Usage, Required, one of, Optional, Example.
pub fn help_text(spec: &CommandSpec) -> Vec<(&'static str, Vec<String>)> {
    let usage_args: Vec<String> = spec
        .args
        .iter()
        .map(|a| match (a.required, a.kind) {
            (true, ArgKind::Flag) => format!("--{}", a.name),
            (true, _) => format!("--{} <value>", a.name),
            (false, ArgKind::Flag) => format!("[--{}]", a.name),
            (false, _) => format!("[--{}]", a.name),
        })
        .collect();
    let describe = |a: &ArgSpec| format!("--{} - {}", a.name, a.about);
    let mut sections =
        vec![("About", vec![spec.about.to_owned()]), ("Usage", vec![format!("{} {}", spec.name, usage_args.join(" ")).trim().to_owned()])];
    let required: Vec<String> = spec.args.iter().filter(|a| a.required).map(describe).collect();
    if !required.is_empty() {
        sections.push(("Required parameters", required));
    }
    let one_of: Vec<String> = spec.args.iter().filter(|a| spec.one_of.contains(&a.name)).map(describe).collect();
    if !one_of.is_empty() {
        sections.push(("Include only one parameter", one_of));
    }
    let optional: Vec<String> = spec.args.iter().filter(|a| !a.required && !spec.one_of.contains(&a.name)).map(describe).collect();
    if !optional.is_empty() {
        sections.push(("Optional parameters", optional));
    }
    sections.push(("Example", vec![spec.example.to_owned()]));
    sections
}

// ---- what this user may do on this host ----

/// Why `who` may not run `spec` on this host, or `None`: the privilege and
/// licence of the command (the server's [`command_refusal`]), the licence
/// of the agent type, and the capabilities the agent reports. The console
/// explains a refused command rather than hiding it. `cancel` is decided
/// per action by [`cancel_choices`].
pub fn command_unavailable(
    spec: &CommandSpec,
    agent_type: ResponseAgentType,
    who: &EndpointAuthzResponse,
    capabilities: &[EndpointCapability],
    host: &str,
) -> Option<String> {
    let command = spec.command?;
    if let Some(reason) = agent_type_license_refusal(agent_type, who.license) {
        return Some(reason);
    }
    if command == ResponseCommand::Cancel {
        return (!endpoint_authz(&who.privileges, who.license).can_cancel_action)
            .then(|| "cancel needs a role that may send a response action it could cancel".to_owned());
    }
    command_refusal(&who.privileges, who.license, command).or_else(|| agent_refusal(command, agent_type, capabilities, host))
}

/// A pending action of this host in the `cancel --action` selector, with
/// why this user may not cancel it (`None`: they may).
#[derive(Debug, Clone, PartialEq)]
pub struct CancelChoice<'a> {
    pub action: &'a ActionDetails,
    pub refusal: Option<String>,
}

/// This host's pending actions (in the order given: the API's newest
/// first), each judged by the server's [`cancel_refusal`] for this host.
/// The selector lists those with no refusal.
pub fn cancel_choices<'a>(who: &Canceller<'_>, agent_id: &str, actions: &'a [ActionDetails]) -> Vec<CancelChoice<'a>> {
    actions
        .iter()
        .filter(|a| a.agents.iter().any(|id| id == agent_id) && host_outcome(a, agent_id) == Outcome::Pending)
        .map(|action| CancelChoice { action, refusal: cancel_refusal(who, action, &[agent_id.to_owned()]).map(|r| r.message) })
        .collect()
}

/// Why `cancel` cannot be used on this host now, or `None`: nothing is
/// pending here (a reviewer's finding: Kibana offered cancel, then failed),
/// or nothing pending here may be cancelled by this user.
pub fn cancel_unavailable(choices: &[CancelChoice<'_>]) -> Option<String> {
    if choices.is_empty() {
        return Some("There is no pending action on this host to cancel".to_owned());
    }
    if choices.iter().all(|c| c.refusal.is_some()) {
        let first = choices.iter().find_map(|c| c.refusal.as_deref()).unwrap_or_default();
        let count = choices.len();
        let (noun, verb) = if count == 1 { ("action", "is") } else { ("actions", "are") };
        return Some(format!("None of the {count} pending {noun} on this host {verb} yours to cancel: {first}"));
    }
    None
}

/// What the console says instead of sending `cancel --action <action>` for
/// this host, or `None` to send it: an action no longer pending here is
/// "already completed" (or failed, cancelled, expired), not a doomed request.
pub fn cancel_precheck(who: &Canceller<'_>, agent_id: &str, action: &ActionDetails) -> Option<String> {
    if !action.agents.iter().any(|id| id == agent_id) {
        return Some(format!("Action {} was not sent to this host", action.id));
    }
    let outcome = host_outcome(action, agent_id);
    if outcome != Outcome::Pending {
        return Some(format!("Action {} ({}) has {}: there is nothing to cancel", action.id, action.command.console_name(), outcome.already()));
    }
    cancel_refusal(who, action, &[agent_id.to_owned()]).map(|r| r.message)
}

// ---- typing: hints, completion, history ----

/// The line under the command input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub text: String,
    /// An unknown command: the input shows it.
    pub error: bool,
}

/// Kibana's input hints: the idle hint, "Unknown command …", or the
/// command's instruction with its example.
pub fn hint(input: &str, agent_type: ResponseAgentType) -> Hint {
    let ok = |text: String| Hint { text, error: false };
    let name = input.split_whitespace().next().unwrap_or_default();
    if name.is_empty() {
        return ok("Press the up arrow key to access previously entered commands".into());
    }
    if BUILTIN_COMMANDS.iter().any(|(builtin, _)| *builtin == name) {
        return ok("Hit enter to execute".into());
    }
    let Some(spec) = commands(agent_type).iter().find(|c| c.name == name) else {
        let text = if agent_type == ResponseAgentType::MicrosoftDefenderEndpoint && ENDPOINT_COMMANDS.iter().any(|c| c.name == name) {
            format!("Support for {name} is not currently available for Microsoft Defender for Endpoint.")
        } else {
            format!("Unknown command {name}")
        };
        return Hint { text, error: true };
    };
    let instruction = if spec.args.is_empty() {
        return ok("Hit enter to execute".into());
    } else if !spec.one_of.is_empty() {
        "Enter a pid or an entity id to execute".to_owned()
    } else if spec.command == Some(ResponseCommand::Cancel) {
        "Select a pending action to cancel".to_owned()
    } else if spec.args.iter().all(|a| !a.required) {
        "Hit enter to execute or add an optional comment".to_owned()
    } else {
        let required: Vec<String> = spec.args.iter().filter(|a| a.required).map(|a| format!("--{}", a.name)).collect();
        format!("Enter {} to execute", required.join(" and "))
    };
    ok(format!("{instruction} Ex: [ {} ]", spec.example))
}

/// Tab: the line with its last word completed, when exactly one command
/// (first word) or one argument of the command (`--…`) starts with it.
pub fn complete(input: &str, agent_type: ResponseAgentType) -> Option<String> {
    let specs = commands(agent_type);
    let start = input.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let (head, last) = input.split_at(start);
    let unique = |mut candidates: Vec<&'static str>| {
        candidates.dedup();
        if candidates.len() == 1 { candidates.first().copied() } else { None }
    };
    if head.trim().is_empty() {
        let names = BUILTIN_COMMANDS.iter().map(|(n, _)| *n).chain(specs.iter().map(|c| c.name));
        let name = unique(names.filter(|n| n.starts_with(last) && *n != last).collect())?;
        return Some(format!("{head}{name} "));
    }
    let partial = last.strip_prefix("--").filter(|p| !p.contains('='))?;
    let command = head.split_whitespace().next()?;
    let spec = specs.iter().find(|c| c.name == command)?;
    let name = unique(spec.args.iter().map(|a| a.name).chain(["help"]).filter(|n| n.starts_with(partial) && *n != partial).collect())?;
    Some(format!("{head}--{name} "))
}

/// How many lines the input history keeps (Kibana's cap).
pub const HISTORY_CAP: usize = 100;

/// Puts `input` first in the history (newest first, no repeats, capped).
pub fn remember(history: &mut Vec<String>, input: &str) {
    let input = input.trim();
    if input.is_empty() {
        return;
    }
    history.retain(|line| line != input);
    history.insert(0, input.to_owned());
    history.truncate(HISTORY_CAP);
}

/// The history lines containing `filter` (any case), newest first.
pub fn filter_history<'a>(history: &'a [String], filter: &str) -> Vec<&'a str> {
    let filter = filter.trim().to_lowercase();
    history.iter().filter(|line| line.to_lowercase().contains(&filter)).map(String::as_str).collect()
}

/// The action id a `cancel` line names, if it names one.
pub fn cancel_action_id(input: &str) -> Option<String> {
    let line = split(input).ok()?;
    if line.name != "cancel" {
        return None;
    }
    line.args.into_iter().find(|(name, _)| name == "action").and_then(|(_, value)| value).filter(|v| !v.trim().is_empty())
}

// ---- the transcript for the case file ----

/// One line entered in a console and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptEntry {
    pub input: String,
    /// When it was entered (ISO).
    pub entered_at: String,
    pub entered_by: String,
    /// The action it sent, as it stands now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionDetails>,
    /// What the console answered without an action (help, an error, status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
}

/// A console session, exported for the case file (chain of custody).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcript {
    pub host: String,
    pub agent_id: String,
    pub agent_type: ResponseAgentType,
    pub exported_at: String,
    pub exported_by: String,
    pub entries: Vec<TranscriptEntry>,
}

/// A fence longer than any run of backticks in `text`, so no content can close it.
fn fenced(text: &str, language: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{text}\n{fence}\n")
}

impl Transcript {
    /// The transcript as Markdown: every line, who entered it and when, the
    /// action's id, parameters, status and this host's output.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Response console transcript: {}\n\n- Host: {} (agent `{}`, {})\n- Exported: {} by {}\n- Entries: {}\n",
            self.host,
            self.host,
            self.agent_id,
            self.agent_type.title(),
            self.exported_at,
            self.exported_by,
            self.entries.len()
        );
        for (n, entry) in self.entries.iter().enumerate() {
            out.push_str(&format!("\n## {}. {} by {}\n\n", n + 1, entry.entered_at, entry.entered_by));
            out.push_str(&fenced(&entry.input, "console"));
            if let Some(action) = &entry.action {
                let outcome = host_outcome(action, &self.agent_id);
                out.push_str(&format!(
                    "\n- Action: `{}` ({})\n- Status: {} ({})\n- Sent by {} at {}\n",
                    action.id,
                    action.command.console_name(),
                    outcome.label(),
                    outcome.console_title(action.command),
                    action.created_by,
                    action.started_at
                ));
                if let Some(state) = action.agent_state.get(&self.agent_id).and_then(|s| s.completed_at.as_deref()) {
                    out.push_str(&format!("- Completed at {state}\n"));
                }
                if let Some(comment) = &action.comment {
                    out.push_str(&format!("- Comment: {}\n", comment.replace('\n', " ")));
                }
                if !action.parameters.as_object().is_none_or(|p| p.is_empty()) {
                    out.push_str("- Parameters:\n\n");
                    out.push_str(&fenced(&action.parameters.to_string(), "json"));
                }
                for error in action.agent_state.get(&self.agent_id).and_then(|s| s.errors.as_ref()).into_iter().flatten() {
                    out.push_str(&format!("- Error: {}\n", error.replace('\n', " ")));
                }
                if let Some(output) = action.outputs.as_ref().and_then(|o| o.get(&self.agent_id)) {
                    let text = serde_json::to_string_pretty(&output.content).unwrap_or_default();
                    out.push_str("\nOutput:\n\n");
                    out.push_str(&fenced(&text, "json"));
                }
            }
            if !entry.text.is_empty() {
                out.push('\n');
                out.push_str(&fenced(&entry.text.join("\n"), "text"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
