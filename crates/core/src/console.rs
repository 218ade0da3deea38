//! The responder console's command line (`mde-and-console.md` §3): the
//! commands each agent type offers, how a line is split into a command and
//! its `--arguments` (quotes, `--name=value`, `\-\-` for a literal `--`),
//! Kibana's validation messages, the `--help` text, and the API request a
//! valid line becomes. The SPA's console validates with this before it sends.

use serde_json::{Value, json};

use crate::response_actions::{ResponseAgentType, ResponseCommand};

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

#[cfg(test)]
mod tests;
