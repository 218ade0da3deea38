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

mod rules {
    use crate::actions::License;
    use crate::authz::Role;
    use crate::response_actions::tests::{action, privileges, state, who};
    use crate::response_actions::{ActionDetails, AgentState, EndpointAuthzResponse, EndpointCapability, ResponseCommand, endpoint_authz};

    use super::super::*;

    fn authz(role: Role, license: License) -> EndpointAuthzResponse {
        let privileges = privileges(role);
        EndpointAuthzResponse { authz: endpoint_authz(&privileges, license), username: "t2".into(), privileges, license, mde_cancel_enabled: true }
    }

    fn spec(name: &str) -> CommandSpec {
        *ENDPOINT_COMMANDS.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name}"))
    }

    fn with_id(mut action: ActionDetails, id: &str) -> ActionDetails {
        action.id = id.into();
        action
    }

    #[test]
    fn refused_commands_say_why() {
        let all = EndpointCapability::ALL;
        let t2 = authz(Role::T2Analyst, License::Enterprise);
        let refused = command_unavailable(&spec("execute"), ResponseAgentType::Endpoint, &t2, all, "web-1");
        assert!(refused.as_deref().is_some_and(|r| r.starts_with("execute requires the")), "{refused:?}");
        assert_eq!(command_unavailable(&spec("isolate"), ResponseAgentType::Endpoint, &t2, all, "web-1"), None);
        // The licence: processes needs Enterprise.
        let platinum = authz(Role::T3Analyst, License::Platinum);
        assert!(
            command_unavailable(&spec("processes"), ResponseAgentType::Endpoint, &platinum, all, "web-1")
                .is_some_and(|r| r.contains("enterprise licence"))
        );
        // The agent's capabilities.
        let t3 = authz(Role::T3Analyst, License::Enterprise);
        let refused = command_unavailable(&spec("scan"), ResponseAgentType::Endpoint, &t3, &[EndpointCapability::Isolation], "web-1");
        assert!(refused.as_deref().is_some_and(|r| r.contains("on web-1") && r.contains("scan")), "{refused:?}");
        // status reads only; cancel follows whether the user may cancel at all.
        assert_eq!(command_unavailable(&spec("status"), ResponseAgentType::Endpoint, &authz(Role::Viewer, License::Enterprise), all, "h"), None);
        assert!(command_unavailable(&spec("cancel"), ResponseAgentType::Endpoint, &authz(Role::Viewer, License::Enterprise), all, "h").is_some());
        assert_eq!(command_unavailable(&spec("cancel"), ResponseAgentType::Endpoint, &t2, all, "h"), None);
        // MDE needs Enterprise whatever the command.
        let isolate = MDE_COMMANDS[0];
        assert!(command_unavailable(&isolate, ResponseAgentType::MicrosoftDefenderEndpoint, &platinum, &[], "h").is_some());
    }

    #[test]
    fn the_selector_lists_only_what_this_user_may_cancel_here() {
        let t2 = privileges(Role::T2Analyst);
        let bob = who("bob", &t2, License::Enterprise);
        let pending = || state(false, false);
        let actions = vec![
            // Pending here: bob may cancel an isolate.
            with_id(action(ResponseCommand::Isolate, "ann", &[("a1", pending())]), "isolate-1"),
            // Pending here, but bob may not send execute, so not cancel it.
            with_id(action(ResponseCommand::Execute, "ann", &[("a1", pending())]), "execute-1"),
            // Done here, pending elsewhere: not this host's.
            with_id(action(ResponseCommand::Isolate, "ann", &[("a1", state(true, true)), ("a2", pending())]), "isolate-2"),
            // Another host's.
            with_id(action(ResponseCommand::Isolate, "ann", &[("a2", pending())]), "isolate-3"),
            // Ann's cancel: only Ann may cancel it.
            with_id(action(ResponseCommand::Cancel, "ann", &[("a1", pending())]), "cancel-1"),
            // Bob's own cancel: his to cancel.
            with_id(action(ResponseCommand::Cancel, "bob", &[("a1", pending())]), "cancel-2"),
        ];
        let choices = cancel_choices(&bob, "a1", &actions);
        let listed: Vec<(&str, bool)> = choices.iter().map(|c| (c.action.id.as_str(), c.refusal.is_none())).collect();
        assert_eq!(listed, vec![("isolate-1", true), ("execute-1", false), ("cancel-1", false), ("cancel-2", true)]);
        assert!(choices[2].refusal.as_deref().is_some_and(|r| r.contains("only ann")));
        assert_eq!(cancel_unavailable(&choices), None);

        // Finding 1: nothing pending here disables cancel, with the reason.
        assert_eq!(cancel_unavailable(&cancel_choices(&bob, "a9", &actions)).as_deref(), Some("There is no pending action on this host to cancel"));
        // Only others' or forbidden actions: disabled, saying why.
        let others = &actions[1..2];
        let reason = cancel_unavailable(&cancel_choices(&bob, "a1", others));
        assert!(reason.as_deref().is_some_and(|r| r.starts_with("None of the 1 pending action on this host is yours to cancel: ")), "{reason:?}");
    }

    #[test]
    fn a_recalled_cancel_of_a_finished_action_says_so() {
        let t2 = privileges(Role::T2Analyst);
        let bob = who("bob", &t2, License::Enterprise);
        let done = with_id(action(ResponseCommand::Isolate, "ann", &[("a1", state(true, true))]), "isolate-1");
        assert_eq!(
            cancel_precheck(&bob, "a1", &done).as_deref(),
            Some("Action isolate-1 (isolate) has already completed: there is nothing to cancel")
        );
        let cancelled = AgentState { was_canceled: true, ..state(true, false) };
        let cancelled = with_id(action(ResponseCommand::Isolate, "ann", &[("a1", cancelled)]), "isolate-2");
        assert!(cancel_precheck(&bob, "a1", &cancelled).is_some_and(|m| m.contains("already been cancelled")));
        let pending = action(ResponseCommand::Isolate, "ann", &[("a1", state(false, false))]);
        assert_eq!(cancel_precheck(&bob, "a1", &pending), None);
        assert!(cancel_precheck(&bob, "a2", &pending).is_some_and(|m| m.contains("not sent to this host")));
        assert_eq!(cancel_action_id(r#"cancel --action "isolate-1" --comment x"#).as_deref(), Some("isolate-1"));
        assert_eq!(cancel_action_id("isolate --comment x"), None);
    }

    #[test]
    fn the_transcript_keeps_every_line_and_action() {
        let mut sent = action(ResponseCommand::Execute, "bob", &[("a1", state(true, true))]);
        sent.comment = Some("triage\nline two".into());
        sent.parameters = serde_json::json!({"command": "ls ```"});
        let transcript = Transcript {
            host: "web-1".into(),
            agent_id: "a1".into(),
            agent_type: ResponseAgentType::Endpoint,
            exported_at: "2026-11-24T09:00:00Z".into(),
            exported_by: "bob".into(),
            entries: vec![
                TranscriptEntry {
                    input: "help".into(),
                    entered_at: "t0".into(),
                    entered_by: "bob".into(),
                    action: None,
                    text: vec!["isolate - Isolate the host".into()],
                },
                TranscriptEntry {
                    input: "execute --command \"ls ```\"".into(),
                    entered_at: "t1".into(),
                    entered_by: "bob".into(),
                    action: Some(sent),
                    text: Vec::new(),
                },
            ],
        };
        let md = transcript.markdown();
        assert!(md.starts_with("# Response console transcript: web-1\n"));
        assert!(md.contains("## 2. t1 by bob"));
        assert!(md.contains("- Status: Successful (Action completed.)"));
        assert!(md.contains("- Comment: triage line two"));
        // Content with a backtick fence cannot close the transcript's fence.
        assert!(md.contains("````console\nexecute --command \"ls ```\"\n````"));
        let json = serde_json::to_value(&transcript).unwrap_or_default();
        assert_eq!(json["entries"][1]["action"]["command"], "execute");
        assert_eq!(json["entries"][0]["text"][0], "isolate - Isolate the host");
    }
}

#[test]
fn hints_follow_what_is_typed() {
    assert_eq!(hint("", ResponseAgentType::Endpoint).text, "Press the up arrow key to access previously entered commands");
    assert_eq!(hint("help", ResponseAgentType::Endpoint).text, "Hit enter to execute");
    let unknown = hint("foo --x", ResponseAgentType::Endpoint);
    assert!(unknown.error && unknown.text == "Unknown command foo");
    assert_eq!(
        hint("isolate", ResponseAgentType::Endpoint).text,
        r#"Hit enter to execute or add an optional comment Ex: [ isolate --comment "isolate this host" ]"#
    );
    assert!(
        hint("kill-process ", ResponseAgentType::Endpoint).text.starts_with("Enter a pid or an entity id to execute Ex: [ kill-process --pid 123")
    );
    assert!(hint("cancel", ResponseAgentType::Endpoint).text.starts_with("Select a pending action to cancel"));
    assert!(hint("get-file", ResponseAgentType::Endpoint).text.starts_with("Enter --path to execute"));
    let mde = hint("execute", ResponseAgentType::MicrosoftDefenderEndpoint);
    assert!(mde.error && mde.text == "Support for execute is not currently available for Microsoft Defender for Endpoint.");
}

#[test]
fn tab_completes_one_candidate() {
    let e = ResponseAgentType::Endpoint;
    assert_eq!(complete("iso", e).as_deref(), Some("isolate "));
    assert_eq!(complete("ki", e).as_deref(), Some("kill-process "));
    assert_eq!(complete("s", e), None, "status, suspend-process, scan");
    assert_eq!(complete("kill-process --p", e).as_deref(), Some("kill-process --pid "));
    assert_eq!(complete("isolate --c", e).as_deref(), Some("isolate --comment "));
    assert_eq!(complete("isolate --h", e).as_deref(), Some("isolate --help "));
    assert_eq!(complete("nope --c", e), None);
    assert_eq!(complete("runscript --S", ResponseAgentType::MicrosoftDefenderEndpoint).as_deref(), Some("runscript --ScriptName "));
}

#[test]
fn the_history_is_newest_first_without_repeats_and_capped() {
    let mut history = Vec::new();
    for n in 0..150 {
        remember(&mut history, &format!("execute --command {n}"));
    }
    remember(&mut history, "  ");
    remember(&mut history, "execute --command 120");
    assert_eq!(history.len(), HISTORY_CAP);
    assert_eq!(history[0], "execute --command 120");
    assert_eq!(history[1], "execute --command 149");
    assert_eq!(history.iter().filter(|l| *l == "execute --command 120").count(), 1);
    // 14 itself fell off the end; 140-149 remain.
    let found = filter_history(&history, "COMMAND 14");
    assert_eq!(found.len(), 10);
    assert_eq!((found[0], found[9]), ("execute --command 149", "execute --command 140"));
}
