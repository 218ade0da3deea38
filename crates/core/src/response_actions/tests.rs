use serde_json::json;

use super::*;
use crate::authz::{Role, privileges_of};

fn request(parameters: Value) -> ResponseActionRequest {
    ResponseActionRequest { endpoint_ids: vec!["a1".into()], parameters: Some(parameters), ..ResponseActionRequest::default() }
}

#[test]
fn every_command_has_one_route_segment_and_back() {
    for command in ResponseCommand::ALL {
        assert_eq!(ResponseCommand::from_route_segment(command.route_segment()), Some(*command));
    }
    assert_eq!(ResponseCommand::Unisolate.console_name(), "release");
    assert_eq!(ResponseCommand::RunningProcesses.console_name(), "processes");
    assert_eq!(ResponseCommand::from_route_segment("memory_dump"), None);
}

#[test]
fn parameters_are_checked_with_kibanas_messages() {
    use ResponseCommand::*;
    let cases: &[(ResponseCommand, Value, Result<Value, &str>)] = &[
        (Isolate, json!({}), Ok(json!({}))),
        (Isolate, json!({"pid": 1}), Err("[parameters.pid]: definition for this key is missing")),
        (KillProcess, json!({"pid": 42}), Ok(json!({"pid": 42}))),
        (KillProcess, json!({"entity_id": "e-1"}), Ok(json!({"entity_id": "e-1"}))),
        (KillProcess, json!({"pid": 0}), Err("[parameters.pid]: Value must be equal to or greater than [1].")),
        (KillProcess, json!({"pid": -3}), Err("[parameters.pid]: Value must be equal to or greater than [1].")),
        (KillProcess, json!({"pid": "42"}), Err("[parameters.pid]: expected value of type [number] but got [string]")),
        (KillProcess, json!({}), Err("[parameters]: requires one of the following: pid, entity_id")),
        (KillProcess, json!({"pid": 1, "entity_id": "e"}), Err("[parameters]: requires only one of the following: pid, entity_id")),
        (KillProcess, json!({"process_name": "x"}), Err("[parameters.process_name]: is not valid with agent type of endpoint")),
        (SuspendProcess, json!({"entity_id": " "}), Err("[parameters.entity_id]: value has length [1] but it must have a minimum length of [1].")),
        (GetFile, json!({"path": "/tmp/x"}), Ok(json!({"path": "/tmp/x"}))),
        (GetFile, json!({}), Err("[parameters.path]: expected value of type [string] but got [undefined]")),
        (GetFile, json!({"path": ""}), Err("[parameters.path]: value has length [0] but it must have a minimum length of [1].")),
        (Execute, json!({"command": "ls"}), Ok(json!({"command": "ls", "timeout": 14_400}))),
        (Execute, json!({"command": "ls", "timeout": 5}), Ok(json!({"command": "ls", "timeout": 5}))),
        (Execute, json!({"command": "  "}), Err("[parameters.command]: command cannot be an empty string")),
        (Execute, json!({"command": "ls", "timeout": 0}), Err("[parameters.timeout]: Value must be equal to or greater than [1].")),
        (Upload, json!({}), Ok(json!({"overwrite": false}))),
        (Upload, json!({"overwrite": "yes"}), Err("[parameters.overwrite]: expected value of type [boolean] but got [string]")),
        (Runscript, json!({"scriptId": "s1"}), Ok(json!({"scriptId": "s1", "scriptInput": null, "timeout": 14_400}))),
        (Runscript, json!({"scriptId": "s1", "scriptInput": "--x 1"}), Ok(json!({"scriptId": "s1", "scriptInput": "--x 1", "timeout": 14_400}))),
        (Runscript, json!({"scriptName": "s1"}), Err("[parameters.scriptName]: definition for this key is missing")),
        (Cancel, json!({"id": "act-1"}), Ok(json!({"id": "act-1"}))),
        (Cancel, json!({"id": ""}), Err("[parameters.id]: id is required in parameters for cancel action")),
        (Cancel, json!({}), Err("[parameters.id]: id is required in parameters for cancel action")),
    ];
    for (command, params, expected) in cases {
        let got = validate_request(*command, &request(params.clone())).map(|v| v.parameters);
        assert_eq!(got, expected.clone().map_err(str::to_owned), "{command:?} {params}");
    }
}

#[test]
fn mde_runscript_takes_its_own_parameters() {
    let mut body = request(json!({"scriptName": "collect.ps1", "args": "-v"}));
    body.agent_type = Some(ResponseAgentType::MicrosoftDefenderEndpoint);
    assert_eq!(validate_request(ResponseCommand::Runscript, &body).map(|v| v.parameters), Ok(json!({"scriptName": "collect.ps1", "args": "-v"})));
}

#[test]
fn the_body_is_checked_before_the_parameters() {
    let empty = ResponseActionRequest::default();
    assert_eq!(
        validate_request(ResponseCommand::Isolate, &empty),
        Err("[request body.endpoint_ids]: array size is [0], but cannot be smaller than [1]".into())
    );
    let blank = ResponseActionRequest { endpoint_ids: vec!["a".into(), " ".into()], ..ResponseActionRequest::default() };
    assert_eq!(
        validate_request(ResponseCommand::Isolate, &blank),
        Err("[request body.endpoint_ids.1]: value has length [0] but it must have a minimum length of [1].".into())
    );
    let no_alerts = ResponseActionRequest { endpoint_ids: vec!["a".into()], alert_ids: Some(vec![]), ..ResponseActionRequest::default() };
    assert!(validate_request(ResponseCommand::Isolate, &no_alerts).is_err_and(|e| e.starts_with("[request body.alert_ids]")));
    let repeated = ResponseActionRequest { endpoint_ids: vec!["a".into(), "b".into(), "a".into()], ..ResponseActionRequest::default() };
    assert_eq!(validate_request(ResponseCommand::Isolate, &repeated).map(|v| v.endpoint_ids), Ok(vec!["a".to_owned(), "b".to_owned()]));
    let too_many =
        ResponseActionRequest { endpoint_ids: (0..=MAX_ENDPOINT_IDS).map(|i| i.to_string()).collect(), ..ResponseActionRequest::default() };
    assert!(validate_request(ResponseCommand::Isolate, &too_many).is_err());
    let not_object = request(json!([1]));
    assert!(validate_request(ResponseCommand::Isolate, &not_object).is_err_and(|e| e.contains("plain object")));
    let unknown = serde_json::from_value::<ResponseActionRequest>(json!({"endpoint_ids": ["a"], "surprise": 1}));
    assert!(unknown.is_err());
}

#[test]
fn execute_expires_with_its_timeout() {
    assert_eq!(expiration_ms(ResponseCommand::Execute, &json!({"timeout": 30})), 90_000);
    assert_eq!(expiration_ms(ResponseCommand::Execute, &json!({"timeout": u64::MAX})), DEFAULT_EXPIRATION_MS);
    assert_eq!(expiration_ms(ResponseCommand::Isolate, &json!({})), DEFAULT_EXPIRATION_MS);
}

pub(crate) fn state(completed: bool, successful: bool) -> AgentState {
    AgentState { is_completed: completed, was_successful: successful, ..AgentState::default() }
}

#[test]
fn status_is_derived_as_kibana_does() {
    use ActionStatus::*;
    let canceled = AgentState { was_canceled: true, ..state(true, false) };
    let cases: &[(&[AgentState], bool, ActionStatus, bool, bool)] = &[
        // states, past expiry, status, isCompleted, isExpired
        (&[state(false, false)], false, Pending, false, false),
        (&[state(false, false)], true, Failed, true, true),
        (&[state(true, true)], false, Successful, true, false),
        (&[state(true, true)], true, Successful, true, false),
        (&[state(true, false)], false, Failed, true, false),
        (&[state(true, true), state(false, false)], false, Pending, false, false),
        (&[state(true, true), state(false, false)], true, Failed, true, true),
        (&[state(true, true), state(true, false)], false, Failed, true, false),
        (std::slice::from_ref(&canceled), false, Failed, true, false),
        (&[canceled.clone(), state(false, false)], false, Pending, false, false),
        (&[AgentState { is_expired: true, ..state(true, false) }], false, Failed, true, true),
        (&[], false, Pending, false, false),
    ];
    for (states, past, status, completed, expired) in cases {
        let got = overall(states.iter(), *past);
        assert_eq!((got.status, got.is_completed, got.is_expired), (*status, *completed, *expired), "{states:?} past={past}");
    }
    assert!(overall([AgentState { was_canceled: true, ..state(true, false) }].iter(), false).was_canceled);
}

#[test]
fn date_filters_read_iso_and_date_math() {
    let now = 1_795_500_000_000; // 2026-11-24T…
    assert_eq!(resolve_date("1970-01-02", now, false), Ok(86_400_000));
    assert_eq!(resolve_date("2026-11-24T08:00:00Z", now, false), Ok(1_795_507_200_000));
    assert_eq!(resolve_date("2026-11-24T09:00:00+01:00", now, false), Ok(1_795_507_200_000));
    assert_eq!(resolve_date("2026-11-24T08:00:00.250Z", now, false), Ok(1_795_507_200_250));
    assert_eq!(resolve_date("now", now, false), Ok(now));
    assert_eq!(resolve_date("now-7d", now, false), Ok(now - 7 * 86_400_000));
    assert_eq!(resolve_date("now+1h", now, false), Ok(now + 3_600_000));
    let day_start = now - now.rem_euclid(86_400_000);
    assert_eq!(resolve_date("now/d", now, false), Ok(day_start));
    assert_eq!(resolve_date("now/d", now, true), Ok(day_start + 86_400_000 - 1));
    assert_eq!(resolve_date("now-30d/d", now, false), Ok(day_start - 30 * 86_400_000));
    for bad in ["yesterday", "now-", "now-7", "now-7q", "2026-13-01", "now-99999999999999999y", "2026-11-24T25:00Z"] {
        assert!(resolve_date(bad, now, false).is_err(), "{bad}");
    }
}

#[test]
fn list_queries_parse_and_print_back() {
    let query = ActionListQuery::parse([
        ("agentIds", "a2,a1"),
        ("agentIds", "a1"),
        ("commands", "isolate"),
        ("commands", "execute,cancel"),
        ("statuses", "pending"),
        ("page", "3"),
        ("pageSize", "50"),
        ("startDate", "now-1d"),
    ]);
    let query = query.unwrap_or_default();
    assert_eq!(query.agent_ids, vec!["a1", "a2"]);
    assert_eq!(query.commands, vec![ResponseCommand::Isolate, ResponseCommand::Execute, ResponseCommand::Cancel]);
    assert_eq!((query.page, query.page_size), (3, 50));
    let printed = query.to_pairs();
    let again = ActionListQuery::parse(printed.iter().map(|(k, v)| (*k, v.as_str())));
    assert_eq!(again, Ok(query));
    for bad in [("page", "0"), ("pageSize", "10001"), ("statuses", "done"), ("commands", "reboot"), ("sort", "x")] {
        assert!(ActionListQuery::parse([bad]).is_err(), "{bad:?}");
    }
}

pub(crate) fn privileges(role: Role) -> Vec<Privilege> {
    privileges_of(&[role])
}

/// The whole matrix: role × command × licence, against Kibana's table.
#[test]
fn endpoint_authz_matrix() {
    use ResponseCommand::*;
    for role in Role::ALL {
        for license in License::ALL {
            let granted = privileges(role);
            let authz = endpoint_authz(&granted, *license);
            for command in ResponseCommand::ALL {
                let Some(privilege) = command.privilege() else { continue };
                let expected = granted.contains(&privilege) && license.allows(command.minimum_license());
                assert_eq!(command_refusal(&granted, *license, *command).is_none(), expected, "{role} {license:?} {command:?}");
            }
            let enterprise = license.allows(License::Enterprise);
            let platinum = license.allows(License::Platinum);
            assert_eq!(authz.can_isolate_host, granted.contains(&Privilege::Isolate) && platinum, "{role} {license:?}");
            assert_eq!(authz.can_un_isolate_host, granted.contains(&Privilege::Release), "{role} {license:?}");
            assert_eq!(authz.can_write_execute_operations, granted.contains(&Privilege::Execute) && enterprise, "{role} {license:?}");
            assert_eq!(authz.can_get_running_processes, granted.contains(&Privilege::Processes) && enterprise);
            // Cancel: whoever may send any cancellable command, release included.
            let any = [Isolate, Unisolate, KillProcess, SuspendProcess, RunningProcesses, GetFile, Execute, Upload, Scan, Runscript]
                .iter()
                .any(|c| command_refusal(&granted, *license, *c).is_none());
            assert_eq!(authz.can_cancel_action, any, "{role} {license:?}");
            // The console needs Enterprise and a command other than release.
            if !enterprise {
                assert!(!authz.can_access_response_console);
            }
        }
    }
    let t2 = endpoint_authz(&privileges(Role::T2Analyst), License::Platinum);
    assert!(t2.can_cancel_action && t2.can_isolate_host && !t2.can_access_response_console && !t2.can_get_running_processes);
    let viewer = endpoint_authz(&privileges(Role::Viewer), License::Enterprise);
    assert!(!viewer.can_cancel_action && !viewer.can_access_response_console && viewer.can_read_actions_log_management);
    let basic_t2 = endpoint_authz(&privileges(Role::T2Analyst), License::Basic);
    assert!(!basic_t2.can_isolate_host && basic_t2.can_un_isolate_host && basic_t2.can_cancel_action);
}

#[test]
fn agents_refuse_what_they_cannot_do() {
    use EndpointCapability as C;
    let all: Vec<C> = C::ALL.to_vec();
    assert_eq!(agent_refusal(ResponseCommand::Execute, ResponseAgentType::Endpoint, &all, "h"), None);
    let old = [C::Isolation, C::RunningProcesses];
    assert!(
        agent_refusal(ResponseCommand::Execute, ResponseAgentType::Endpoint, &old, "web-1")
            .is_some_and(|m| m.contains("web-1") && m.contains("execute"))
    );
    assert!(
        agent_refusal(ResponseCommand::Execute, ResponseAgentType::MicrosoftDefenderEndpoint, &[], "h")
            .is_some_and(|m| m == "The execute command is not currently available for Microsoft Defender for Endpoint")
    );
    assert_eq!(agent_refusal(ResponseCommand::Isolate, ResponseAgentType::MicrosoftDefenderEndpoint, &[], "h"), None);
}

pub(crate) fn action(command: ResponseCommand, created_by: &str, states: &[(&str, AgentState)]) -> ActionDetails {
    let agent_state: BTreeMap<String, AgentState> = states.iter().map(|(a, s)| ((*a).to_owned(), s.clone())).collect();
    let o = overall(agent_state.values(), false);
    ActionDetails {
        id: "act-1".into(),
        agents: states.iter().map(|(a, _)| (*a).to_owned()).collect(),
        hosts: states.iter().map(|(a, _)| ((*a).to_owned(), ActionHost { name: format!("host-{a}"), cancel_supported: true })).collect(),
        command,
        agent_type: ResponseAgentType::Endpoint,
        is_expired: o.is_expired,
        is_completed: o.is_completed,
        was_successful: o.was_successful,
        was_canceled: o.was_canceled,
        errors: None,
        started_at: "2026-11-24T08:00:00.000Z".into(),
        completed_at: None,
        status: o.status,
        created_by: created_by.into(),
        comment: None,
        parameters: json!({}),
        outputs: None,
        agent_state,
        alert_ids: None,
        case_ids: None,
        rule_id: None,
        rule_name: None,
        expiration: "2026-12-08T08:00:00.000Z".into(),
    }
}

pub(crate) fn who<'a>(username: &'a str, privileges: &'a [Privilege], license: License) -> Canceller<'a> {
    Canceller { username, privileges, license, mde_cancel_enabled: false }
}

#[test]
fn cancel_rules() {
    let t2 = privileges(Role::T2Analyst);
    let t3 = privileges(Role::T3Analyst);
    let viewer = privileges(Role::Viewer);
    let pending = || state(false, false);
    let status = |r: Option<Refusal>| r.map(|r| r.status);

    // A reviewer's finding: on Platinum, a pending release can be cancelled.
    let release = action(ResponseCommand::Unisolate, "ann", &[("a1", pending())]);
    assert_eq!(cancel_refusal(&who("bob", &t2, License::Platinum), &release, &[]), None);
    // Whoever may not send the original command may not cancel it.
    let execute = action(ResponseCommand::Execute, "ann", &[("a1", pending())]);
    let refused = cancel_refusal(&who("bob", &t2, License::Enterprise), &execute, &[]);
    assert!(refused.as_ref().is_some_and(|r| r.status == 403 && r.message.starts_with(AUTHZ_FAILURE) && r.message.contains("response:execute")));
    assert_eq!(cancel_refusal(&who("carl", &t3, License::Enterprise), &execute, &[]), None);
    // Nor does a licence that no longer allows the command.
    assert_eq!(status(cancel_refusal(&who("carl", &t3, License::Platinum), &execute, &[])), Some(403));
    // Without any command, no cancel at all.
    assert_eq!(cancel_refusal(&who("v", &viewer, License::Enterprise), &release, &[]), Some(Refusal::new(403, AUTHZ_FAILURE)));

    // Finished actions, per Kibana's messages.
    let done = action(ResponseCommand::Isolate, "ann", &[("a1", state(true, true))]);
    assert_eq!(
        cancel_refusal(&who("bob", &t2, License::Enterprise), &done, &[]).map(|r| r.message),
        Some("Cannot cancel action [act-1] because it has already completed successfully.".into())
    );
    let failed = action(ResponseCommand::Isolate, "ann", &[("a1", state(true, false))]);
    assert_eq!(
        cancel_refusal(&who("bob", &t2, License::Enterprise), &failed, &[]).map(|r| r.message),
        Some("Cannot cancel action [act-1] because it has already failed.".into())
    );
    // An endpoint that is not a target, and one that already answered.
    let two = action(ResponseCommand::Isolate, "ann", &[("a1", state(true, true)), ("a2", pending())]);
    assert_eq!(
        cancel_refusal(&who("bob", &t2, License::Enterprise), &two, &["zz".into()]).map(|r| (r.status, r.message)),
        Some((400, "Endpoint 'zz' is not associated with action 'act-1'".into()))
    );
    assert_eq!(status(cancel_refusal(&who("bob", &t2, License::Enterprise), &two, &["a1".into()])), Some(400));
    assert_eq!(cancel_refusal(&who("bob", &t2, License::Enterprise), &two, &["a2".into()]), None);

    // A cancel may be cancelled by its sender only, while it is pending.
    let cancel = action(ResponseCommand::Cancel, "ann", &[("a1", pending())]);
    assert_eq!(cancel_refusal(&who("ann", &t2, License::Enterprise), &cancel, &[]), None);
    let other = cancel_refusal(&who("bob", &t3, License::Enterprise), &cancel, &[]);
    assert!(other.is_some_and(|r| r.status == 403 && r.message.contains("only ann")));
    let cancel_done = action(ResponseCommand::Cancel, "ann", &[("a1", state(true, true))]);
    assert_eq!(status(cancel_refusal(&who("ann", &t2, License::Enterprise), &cancel_done, &[])), Some(400));

    // An agent that cannot cancel makes cancel unavailable up front.
    let mut old = action(ResponseCommand::Isolate, "ann", &[("a1", pending())]);
    if let Some(host) = old.hosts.get_mut("a1") {
        host.cancel_supported = false;
    }
    assert!(cancel_refusal(&who("bob", &t2, License::Enterprise), &old, &[]).is_some_and(|r| r.status == 400 && r.message.contains("host-a1")));

    // MDE: the flag decides, and other agent types cannot cancel.
    let mut mde = action(ResponseCommand::Isolate, "ann", &[("a1", pending())]);
    mde.agent_type = ResponseAgentType::MicrosoftDefenderEndpoint;
    assert_eq!(
        cancel_refusal(&who("bob", &t2, License::Enterprise), &mde, &[]).map(|r| r.message),
        Some("Cancel operation is not enabled for Microsoft Defender for Endpoint".into())
    );
    let flagged = Canceller { mde_cancel_enabled: true, ..who("bob", &t2, License::Enterprise) };
    assert_eq!(cancel_refusal(&flagged, &mde, &[]), None);
    // The MDE connector needs Enterprise, so its actions' cancel does too.
    let platinum = Canceller { mde_cancel_enabled: true, ..who("bob", &t2, License::Platinum) };
    assert_eq!(status(cancel_refusal(&platinum, &mde, &[])), Some(403));
    assert!(agent_type_license_refusal(ResponseAgentType::Endpoint, License::Basic).is_none());
    assert!(agent_type_license_refusal(ResponseAgentType::MicrosoftDefenderEndpoint, License::Trial).is_none());
    let mut mde_cancel = action(ResponseCommand::Cancel, "bob", &[("a1", pending())]);
    mde_cancel.agent_type = ResponseAgentType::MicrosoftDefenderEndpoint;
    assert_eq!(cancel_refusal(&flagged, &mde_cancel, &[]).map(|r| r.message), Some("Cannot cancel a cancel action.".into()));
    mde.agent_type = ResponseAgentType::Crowdstrike;
    assert_eq!(status(cancel_refusal(&flagged, &mde, &[])), Some(400));
}

#[test]
fn pending_agents_and_names() {
    let two = action(ResponseCommand::Isolate, "ann", &[("a1", state(true, true)), ("a2", state(false, false))]);
    assert_eq!(two.pending_agents(), vec!["a2"]);
    assert_eq!(two.host_name("a2"), "host-a2");
    assert_eq!(two.host_name("zz"), "zz");
    let mut cancel = action(ResponseCommand::Cancel, "ann", &[("a1", state(false, false))]);
    cancel.parameters = json!({"id": "x"});
    assert_eq!(cancel.cancelled_action_id(), Some("x"));
}

#[test]
fn endpoint_metadata_is_read_from_local_metadata() {
    let meta = EndpointMetadata::of(&json!({"endpoint": {"capabilities": ["isolation", "execute", "time_travel"], "isolated": true}}));
    assert!(meta.isolated);
    assert_eq!(meta.known_capabilities(), vec![EndpointCapability::Isolation, EndpointCapability::Execute]);
    assert_eq!(EndpointMetadata::of(&json!({"host": {}})), EndpointMetadata::default());
    assert_eq!(EndpointMetadata::of(&json!({"endpoint": "garbage"})), EndpointMetadata::default());
}

#[test]
fn endpoint_response_params() {
    let ok = json!({"command": "isolate", "comment": "contain"});
    let parsed = validate_endpoint_response_params(ok.as_object().unwrap_or(&serde_json::Map::new()));
    assert_eq!(parsed, Ok(EndpointResponseParams { command: ResponseCommand::Isolate, comment: Some("contain".into()) }));
    for (params, message) in [
        (json!({}), "[command]: expected value of type [string] but got [undefined]"),
        (json!({"command": "execute"}), "[command]: expected one of [isolate] but got [execute]"),
        (json!({"command": "isolate", "extra": 1}), "[extra]: definition for this key is missing"),
        (json!({"command": "isolate", "comment": 3}), "[comment]: expected value of type [string] but got [number]"),
    ] {
        assert_eq!(validate_endpoint_response_params(params.as_object().unwrap_or(&serde_json::Map::new())), Err(message.to_owned()), "{params}");
    }
}

#[test]
fn every_view_reads_one_outcome() {
    let pending = || state(false, false);
    let cancelled = AgentState { was_canceled: true, ..state(true, false) };
    let expired = AgentState { is_expired: true, ..state(true, false) };
    let one = |s: AgentState| action(ResponseCommand::Execute, "ann", &[("a1", s)]);
    assert_eq!(outcome(&one(pending())), Outcome::Pending);
    assert_eq!(outcome(&one(state(true, true))), Outcome::Successful);
    assert_eq!(outcome(&one(state(true, false))), Outcome::Failed);
    // Kibana bug #275346: a cancelled action is "canceled" everywhere, not "failed" in one place.
    assert_eq!(outcome(&one(cancelled.clone())), Outcome::Canceled);
    assert_eq!(host_outcome(&one(cancelled.clone()), "a1"), Outcome::Canceled);
    assert_eq!(Outcome::Canceled.console_title(ResponseCommand::Execute), "Action canceled.");
    assert_eq!(outcome(&one(expired.clone())), Outcome::Expired);
    assert_eq!(host_outcome(&one(expired), "a1"), Outcome::Expired);
    // One host cancelled, another still running: the action is still pending, each host has its own.
    let mixed = action(ResponseCommand::Execute, "ann", &[("a1", cancelled), ("a2", pending())]);
    assert_eq!((outcome(&mixed), host_outcome(&mixed, "a1"), host_outcome(&mixed, "a2")), (Outcome::Pending, Outcome::Canceled, Outcome::Pending));
    assert_eq!(Outcome::Successful.console_title(ResponseCommand::Runscript), "RunScript was successful.");
    assert_eq!(Outcome::Pending.console_title(ResponseCommand::Cancel), "Cancel action in progress.");
}
