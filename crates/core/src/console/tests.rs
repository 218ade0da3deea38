use serde_json::json;

use super::*;

fn endpoint(input: &str) -> Result<Input, String> {
    parse(input, ResponseAgentType::Endpoint)
}

fn command(input: &str) -> ParsedCommand {
    match endpoint(input) {
        Ok(Input::Command(parsed)) => parsed,
        other => panic!("{input}: {other:?}"),
    }
}

#[test]
fn lines_split_like_kibanas_console() {
    let line = split(r#"execute --command "ls -al" --timeout 2s --comment 'a b'"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line.name, "execute");
    assert_eq!(
        line.args,
        vec![("command".into(), Some("ls -al".into())), ("timeout".into(), Some("2s".into())), ("comment".into(), Some("a b".into()))]
    );
    let line = split(r#"runscript --ScriptName="Cloud Script.ps1" --Args="--Verbose true""#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line.args[0], ("ScriptName".into(), Some("Cloud Script.ps1".into())));
    assert_eq!(line.args[1], ("Args".into(), Some("--Verbose true".into())));
    // A quoted value starting with -- stays a value; \-\- is a literal --.
    let line = split(r#"runscript --script triage --inputParams "--days 3""#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line.args[1], ("inputParams".into(), Some("--days 3".into())));
    let line = split(r"execute --command grep \-\-count x").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line.args[0], ("command".into(), Some("grep --count x".into())));
    assert!(split(r#"isolate --comment "open"#).is_err_and(|e| e.contains("quote")));
    assert!(split(&"x".repeat(MAX_LINE_CHARS + 1)).is_err());
    let many: String = (0..=MAX_ARGS).map(|i| format!(" --a{i}")).collect();
    assert!(split(&format!("isolate{many}")).is_err_and(|e| e.contains("Too many")));
}

#[test]
fn kibanas_validation_messages() {
    for (input, message) in [
        ("kill-process", "This command requires one of the following arguments: --pid, --entityId"),
        ("kill-process --pid 1 --entityId abc", "This command requires only one of the following arguments: --pid, --entityId"),
        ("kill-process --pid", "Argument --pid must have a value"),
        ("kill-process --pid abc", "Argument --pid value must be a number"),
        ("kill-process --pid 0", "Argument --pid value must be greater than zero"),
        ("get-file", "Missing required argument: --path"),
        ("get-file --path a --path b", "Argument can only be used once: --path"),
        ("isolate --force", "Unsupported argument: --force"),
        ("status --x 1", "Command does not support any arguments"),
        ("execute --command ls --timeout 5d", "Invalid argument value: --timeout. Use a number and a unit: h, m or s (e.g. 37m)"),
        ("upload --file x", "Argument --file does not take a value"),
        ("reboot", "Unknown command reboot"),
        ("", "Type a command, or help for the list"),
    ] {
        assert_eq!(endpoint(input), Err(message.to_owned()), "{input}");
    }
    assert_eq!(
        parse("execute --command ls", ResponseAgentType::MicrosoftDefenderEndpoint),
        Err("Support for execute is not currently available for Microsoft Defender for Endpoint.".into())
    );
}

#[test]
fn valid_lines_become_api_parameters() {
    let kill = command("kill-process --pid 123 --comment \"kill this process\"");
    assert_eq!(kill.spec.command, Some(ResponseCommand::KillProcess));
    assert_eq!(kill.parameters, json!({"pid": 123}));
    assert_eq!(kill.comment.as_deref(), Some("kill this process"));
    assert_eq!(command("suspend-process --entityId e-1").parameters, json!({"entity_id": "e-1"}));
    assert_eq!(command("execute --command \"ls -al\" --timeout 2m").parameters, json!({"command": "ls -al", "timeout": 120}));
    assert_eq!(command("upload --file --overwrite").parameters, json!({"overwrite": true}));
    assert_eq!(command("cancel --action act-1").parameters, json!({"id": "act-1"}));
    assert_eq!(command("release").spec.command, Some(ResponseCommand::Unisolate));
    assert_eq!(command("processes").spec.command, Some(ResponseCommand::RunningProcesses));
    assert_eq!(
        command("runscript --script triage --inputParams \"--days 3\"").parameters,
        json!({"scriptName": "triage", "scriptInput": "--days 3"})
    );
    match parse(r#"runscript --ScriptName="collect.ps1" --Args="-Days 3""#, ResponseAgentType::MicrosoftDefenderEndpoint) {
        Ok(Input::Command(parsed)) => assert_eq!(parsed.parameters, json!({"scriptName": "collect.ps1", "args": "-Days 3"})),
        other => panic!("{other:?}"),
    }
    assert_eq!(endpoint("help"), Ok(Input::Help));
    assert_eq!(endpoint("  clear "), Ok(Input::Clear));
    assert!(matches!(endpoint("get-file --help"), Ok(Input::CommandHelp(spec)) if spec.name == "get-file"));
}

#[test]
fn durations() {
    for (text, expected) in
        [("37m", Some(2220)), ("2h", Some(7200)), ("30s", Some(30)), ("45", Some(45)), ("0s", None), ("5d", None), ("m", None), ("200h", None)]
    {
        assert_eq!(duration_seconds(text), expected, "{text}");
    }
}

#[test]
fn help_has_kibanas_sections() {
    let kill = ENDPOINT_COMMANDS.iter().find(|c| c.name == "kill-process").copied().unwrap_or(ENDPOINT_COMMANDS[0]);
    let sections: Vec<&str> = help_text(&kill).iter().map(|(title, _)| *title).collect();
    assert_eq!(sections, vec!["About", "Usage", "Include only one parameter", "Optional parameters", "Example"]);
    let get_file = ENDPOINT_COMMANDS.iter().find(|c| c.name == "get-file").copied().unwrap_or(ENDPOINT_COMMANDS[0]);
    let help = help_text(&get_file);
    assert_eq!(help[1].1, vec!["get-file --path <value> [--comment]".to_owned()]);
    assert_eq!(help[2], ("Required parameters", vec!["--path - The full file path to be retrieved".to_owned()]));
}

#[test]
fn every_command_names_an_api_command_its_agent_type_supports() {
    for agent_type in [ResponseAgentType::Endpoint, ResponseAgentType::MicrosoftDefenderEndpoint] {
        for spec in commands(agent_type) {
            if let Some(command) = spec.command {
                assert!(command.supported_by(agent_type), "{} on {agent_type:?}", spec.name);
                assert_eq!(command.console_name(), spec.name);
            }
            assert!(parse(spec.example, agent_type).is_ok() || spec.name == "status", "{}: {}", spec.name, spec.example);
        }
    }
}
