use serde_json::json;

use super::*;
use crate::authz::{Role, privileges_of};
use crate::fleet::AgentStatus;
use crate::ids::AgentId;
use crate::response_actions::tests::state;
use crate::response_actions::{AgentState, EndpointCapability, EndpointHost, endpoint_refusal, overall};

fn request(command: ResponseCommand, agents: BulkTarget, parameters: Value) -> BulkResponseActionRequest {
    BulkResponseActionRequest { command, agents, include_inactive: false, parameters: Some(parameters), comment: None }
}

fn ids(list: &[&str]) -> BulkTarget {
    BulkTarget::Ids(list.iter().map(|id| AgentId::new(*id)).collect())
}

#[test]
fn which_commands_go_in_bulk() {
    use ResponseCommand::*;
    for (command, allowed) in [
        (Isolate, true),
        (Unisolate, true),
        (RunningProcesses, true),
        (GetFile, true),
        (Execute, true),
        (Scan, true),
        (Runscript, true),
        (Cancel, false),
        (Upload, false),
        (KillProcess, false),
        (SuspendProcess, false),
    ] {
        assert_eq!(bulk_refusal(command).is_none(), allowed, "{command:?}");
    }
    assert!(bulk_refusal(KillProcess).is_some_and(|m| m.contains("one host")));
    assert!(bulk_refusal(Cancel).is_some_and(|m| m.contains("cancel the bulk")));
}

#[test]
fn bulk_commands_follow_privileges_and_the_licence() {
    use ResponseCommand::*;
    let t2 = privileges_of(&[Role::T2Analyst]);
    assert_eq!(bulk_commands(&t2, License::Enterprise), vec![Isolate, Unisolate, RunningProcesses]);
    // Platinum: isolate and release, not the Enterprise commands.
    assert_eq!(bulk_commands(&t2, License::Platinum), vec![Isolate, Unisolate]);
    // Basic: release only (it needs no licence).
    assert_eq!(bulk_commands(&t2, License::Basic), vec![Unisolate]);
    assert!(bulk_commands(&privileges_of(&[Role::Viewer]), License::Trial).is_empty());
    let t3 = privileges_of(&[Role::T3Analyst]);
    assert_eq!(bulk_commands(&t3, License::Trial), vec![Isolate, Unisolate, RunningProcesses, GetFile, Execute, Scan, Runscript]);
}

#[test]
fn a_selection_becomes_one_action_per_thousand_hosts() {
    for (hosts, actions) in [(0, 0), (1, 1), (999, 1), (1_000, 1), (1_001, 2), (2_500, 3), (10_000, 10)] {
        assert_eq!(action_count(hosts), actions, "{hosts}");
        let all: Vec<usize> = (0..hosts).collect();
        let sizes: Vec<usize> = chunks(&all).map(<[usize]>::len).collect();
        assert_eq!(sizes.len(), actions, "{hosts}");
        assert!(sizes.iter().all(|s| *s <= MAX_HOSTS_PER_ACTION && *s > 0), "{hosts}: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), hosts);
    }
}

#[test]
fn bulk_requests_are_checked() {
    use ResponseCommand::*;
    let too_many: Vec<String> = (0..=MAX_BULK_HOSTS).map(|i| format!("a{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    /// The ids kept and the parameters' normal form, or the message.
    type Expected<'a> = Result<(Option<Vec<&'a str>>, Value), &'a str>;
    let cases: Vec<(BulkResponseActionRequest, Expected<'_>)> = vec![
        (request(Isolate, ids(&["a1", "a2", "a1"]), json!({})), Ok((Some(vec!["a1", "a2"]), json!({})))),
        (request(Isolate, BulkTarget::Kuery("policy_id:\"p1\"".into()), Value::Null), Ok((None, json!({})))),
        (request(Execute, ids(&["a1"]), json!({"command": "ls"})), Ok((Some(vec!["a1"]), json!({"command": "ls", "timeout": 14_400})))),
        (request(Execute, ids(&["a1"]), json!({})), Err("[parameters.command]: expected value of type [string] but got [undefined]")),
        (request(Isolate, ids(&["a1"]), json!({"pid": 1})), Err("[parameters.pid]: definition for this key is missing")),
        (request(Isolate, ids(&["a1"]), json!([1])), Err("[request body.parameters]: expected a plain object value, but found [Array] instead.")),
        (request(Isolate, ids(&[]), json!({})), Err("[request body.agents]: array size is [0], but cannot be smaller than [1]")),
        (request(Isolate, ids(&too_many), json!({})), Err("[request body.agents]: array size is [10001], but cannot be greater than [10000]")),
        (
            request(Isolate, ids(&["a1", " "]), json!({})),
            Err("[request body.agents.1]: value has length [0] but it must have a minimum length of [1]."),
        ),
        (
            request(KillProcess, ids(&["a1"]), json!({"pid": 4})),
            Err("[request body.command]: kill-process cannot be sent in bulk: a process id or entity id names a process on one host"),
        ),
        (
            request(Cancel, ids(&["a1"]), json!({"id": "x"})),
            Err("[request body.command]: cancel cannot be sent in bulk: cancel the bulk action's pending hosts instead"),
        ),
    ];
    for (body, expected) in cases {
        let got = validate_bulk_request(&body).map(|v| (v.ids, v.parameters));
        let expected = expected.map(|(ids, params)| (ids.map(|ids| ids.into_iter().map(str::to_owned).collect()), params)).map_err(str::to_owned);
        assert_eq!(got, expected, "{body:?}");
    }
    let mut long = request(Isolate, ids(&["a1"]), json!({}));
    long.comment = Some("x".repeat(MAX_COMMENT_CHARS + 1));
    assert!(validate_bulk_request(&long).is_err_and(|m| m.starts_with("[request body.comment]")));
    long.comment = Some("  ".into());
    assert_eq!(validate_bulk_request(&long).map(|v| v.comment), Ok(None));
}

#[test]
fn the_request_reads_ids_or_a_kuery() {
    let by_ids: Result<BulkResponseActionRequest, _> = serde_json::from_value(json!({"command": "isolate", "agents": ["a1"]}));
    assert!(by_ids.is_ok_and(|r| r.agents == ids(&["a1"]) && !r.include_inactive));
    let by_kuery: Result<BulkResponseActionRequest, _> =
        serde_json::from_value(json!({"command": "running-processes", "agents": "policy_id:p1", "include_inactive": true}));
    assert!(by_kuery.is_ok_and(|r| r.agents == BulkTarget::Kuery("policy_id:p1".into()) && r.include_inactive));
    let unknown: Result<BulkResponseActionRequest, _> = serde_json::from_value(json!({"command": "isolate", "agents": [], "endpoint_ids": []}));
    assert!(unknown.is_err());
}

#[test]
fn hosts_that_cannot_take_a_command_say_why() {
    let every = [EndpointCapability::Isolation, EndpointCapability::Execute];
    let host = |active, status, capabilities| EndpointHost { id: "a1", host_name: "web-1", active, status, capabilities };
    let cases: &[(EndpointHost<'_>, ResponseCommand, Option<&str>)] = &[
        (host(true, AgentStatus::Online, &every), ResponseCommand::Isolate, None),
        // Offline is fine: the action waits for it.
        (host(true, AgentStatus::Offline, &every), ResponseCommand::Isolate, None),
        (
            host(true, AgentStatus::Uninstalled, &every),
            ResponseCommand::Isolate,
            Some("Endpoint 'web-1' (a1) is uninstalled: it can no longer receive actions"),
        ),
        (
            host(false, AgentStatus::Unenrolled, &every),
            ResponseCommand::Isolate,
            Some("Endpoint 'web-1' (a1) is unenrolled: it can no longer receive actions"),
        ),
        (
            host(true, AgentStatus::Online, &every),
            ResponseCommand::Scan,
            Some("The scan command is not supported by the agent on web-1: it does not report the scan capability (upgrade the agent)"),
        ),
    ];
    for (host, command, expected) in cases {
        assert_eq!(endpoint_refusal(*command, host).as_deref(), *expected, "{host:?} {command:?}");
    }
}

#[test]
fn the_preview_counts_and_lists_at_most_a_hundred_refusals() {
    let refused = |n: usize| -> Vec<RefusedHost> {
        (0..n).map(|i| RefusedHost { agent_id: format!("r{i}"), host_name: None, reason: "Endpoint 'r' was not found".into() }).collect()
    };
    for (eligible, refusals, actions, listed_count) in [(5, 0, 1, 0), (1_500, 3, 2, 3), (0, 250, 0, 100), (10_000, 0, 10, 0)] {
        let preview = BulkPreview::of(ResponseCommand::Isolate, eligible, refused(refusals));
        assert_eq!(
            (preview.selected, preview.eligible, preview.actions, preview.refused_total, preview.refused.len()),
            (eligible + refusals, eligible, actions, refusals, listed_count),
            "{eligible} + {refusals}"
        );
    }
}

/// The history tests' action, named `id`, read as past its expiry when `expired`.
fn action(id: &str, expired: bool, states: &[(&str, AgentState)]) -> ActionDetails {
    let mut action = crate::response_actions::tests::action(ResponseCommand::Isolate, "ann", states);
    action.id = id.into();
    let o = overall(action.agent_state.values(), expired);
    (action.is_expired, action.is_completed, action.was_successful, action.status) = (o.is_expired, o.is_completed, o.was_successful, o.status);
    action
}

fn record() -> BulkRecord {
    BulkRecord {
        id: "bulk-1".into(),
        command: ResponseCommand::Isolate,
        agent_type: ResponseAgentType::Endpoint,
        parameters: json!({}),
        comment: Some("contain".into()),
        created_by: "ann".into(),
        started_at: "2026-11-24T08:00:00.000Z".into(),
        kuery: Some("policy_id:p1".into()),
        selected: 7,
        refused_total: 1,
        refused: vec![RefusedHost { agent_id: "gone".into(), host_name: Some("old".into()), reason: "uninstalled".into() }],
    }
}

#[test]
fn each_host_is_counted_by_the_history_s_host_outcome() {
    let cancelled =
        AgentState { was_canceled: true, canceled_by: Some("bob".into()), errors: Some(vec!["Cancelled by bob".into()]), ..state(true, false) };
    let expired_by_task = AgentState { is_expired: true, ..state(true, false) };
    let live = action("act-1", false, &[("a1", state(true, true)), ("a2", state(false, false)), ("a3", state(true, false)), ("a4", cancelled)]);
    let outcomes: Vec<Outcome> = live.agents.iter().map(|a| host_outcome(&live, a)).collect();
    use Outcome::*;
    assert_eq!(outcomes, vec![Successful, Pending, Failed, Canceled]);
    // Past its expiry, a host that never answered is expired; one that answered keeps its answer.
    let past = action("act-2", true, &[("b1", state(true, true)), ("b2", state(false, false)), ("b3", expired_by_task)]);
    let outcomes: Vec<Outcome> = past.agents.iter().map(|a| host_outcome(&past, a)).collect();
    assert_eq!(outcomes, vec![Successful, Expired, Expired]);
}

#[test]
fn the_bulk_status_counts_every_host_and_pages_them_by_name() {
    let cancelled = AgentState { was_canceled: true, canceled_by: Some("bob".into()), ..state(true, false) };
    let actions = [
        action("act-1", false, &[("a3", state(true, true)), ("a1", state(false, false)), ("a2", cancelled)]),
        action("act-2", true, &[("a5", state(false, false)), ("a4", state(true, false))]),
    ];
    let all = bulk_status(record(), &actions, &BulkHostsQuery::default());
    assert_eq!(all.counts, BulkCounts { total: 5, pending: 1, successful: 1, failed: 1, canceled: 1, expired: 1 });
    assert_eq!(all.status, ActionStatus::Pending);
    assert_eq!(all.action_ids, vec!["act-1", "act-2"]);
    assert_eq!(all.hosts.iter().map(|h| h.host_name.as_str()).collect::<Vec<_>>(), vec!["host-a1", "host-a2", "host-a3", "host-a4", "host-a5"]);
    assert_eq!(all.hosts[1].canceled_by.as_deref(), Some("bob"));
    assert_eq!(all.hosts[4].action_id, "act-2");
    assert_eq!((all.hosts_total, all.refused_total, all.selected), (5, 1, 7));

    let page = bulk_status(record(), &actions, &BulkHostsQuery { page: 2, page_size: 2, outcome: None });
    assert_eq!(page.hosts.iter().map(|h| h.agent_id.as_str()).collect::<Vec<_>>(), vec!["a3", "a4"]);
    assert_eq!(page.counts.total, 5, "counts are of every host, whatever the page");
    let pending = bulk_status(record(), &actions, &BulkHostsQuery { outcome: Some(Outcome::Pending), ..BulkHostsQuery::default() });
    assert_eq!((pending.hosts_total, pending.hosts[0].agent_id.as_str()), (1, "a1"));
    let far = bulk_status(record(), &actions, &BulkHostsQuery { page: u64::MAX, page_size: MAX_HOSTS_PAGE_SIZE, outcome: None });
    assert!(far.hosts.is_empty());

    for (counts, status) in [
        (BulkCounts { total: 2, successful: 2, ..BulkCounts::default() }, ActionStatus::Successful),
        (BulkCounts { total: 2, successful: 1, expired: 1, ..BulkCounts::default() }, ActionStatus::Failed),
        (BulkCounts { total: 2, pending: 1, failed: 1, ..BulkCounts::default() }, ActionStatus::Pending),
    ] {
        assert_eq!(counts.status(), status, "{counts:?}");
    }
}

#[test]
fn the_hosts_query_reads_and_writes_its_pairs() {
    assert_eq!(BulkHostsQuery::parse([]), Ok(BulkHostsQuery::default()));
    let query = BulkHostsQuery::parse([("page", "3"), ("pageSize", "50"), ("outcome", "failed")]);
    assert_eq!(query, Ok(BulkHostsQuery { page: 3, page_size: 50, outcome: Some(Outcome::Failed) }));
    let pairs = query.map(|q| q.to_pairs()).unwrap_or_default();
    assert_eq!(pairs, vec![("page", "3".to_owned()), ("pageSize", "50".to_owned()), ("outcome", "failed".to_owned())]);
    for (pairs, message) in [
        (vec![("page", "0")], "[request query.page]: Value must be equal to or greater than [1]."),
        (vec![("pageSize", "1001")], "[request query.pageSize]: Value must be between [1] and [1000]."),
        (vec![("outcome", "done")], "[request query.outcome]: expected one of [pending, successful, failed, canceled, expired] but got [done]"),
        (vec![("sort", "x")], "[request query.sort]: definition for this key is missing"),
    ] {
        assert_eq!(BulkHostsQuery::parse(pairs.clone()), Err(message.to_owned()), "{pairs:?}");
    }
}

fn who(privileges: &[Privilege], license: License) -> Canceller<'_> {
    Canceller { username: "bob", privileges, license, mde_cancel_enabled: false }
}

#[test]
fn who_may_cancel_a_bulk() {
    let t2 = privileges_of(&[Role::T2Analyst]);
    let t3 = privileges_of(&[Role::T3Analyst]);
    let viewer = privileges_of(&[Role::Viewer]);
    assert_eq!(bulk_cancel_refusal(&who(&t2, License::Enterprise), ResponseCommand::Isolate), None);
    assert_eq!(bulk_cancel_refusal(&who(&viewer, License::Enterprise), ResponseCommand::Isolate), Some(Refusal::new(403, AUTHZ_FAILURE)));
    let execute = bulk_cancel_refusal(&who(&t2, License::Enterprise), ResponseCommand::Execute);
    assert!(execute.is_some_and(|r| r.status == 403 && r.message.contains("response:execute")));
    assert_eq!(bulk_cancel_refusal(&who(&t3, License::Enterprise), ResponseCommand::Execute), None);
    // Release needs no licence, so its bulk can be cancelled after a downgrade.
    assert_eq!(bulk_cancel_refusal(&who(&t2, License::Basic), ResponseCommand::Unisolate), None);
    assert_eq!(BulkCancelRequest { comment: Some(" ".into()) }.comment(), Ok(None));
    assert!(BulkCancelRequest { comment: Some("x".repeat(MAX_COMMENT_CHARS + 1)) }.comment().is_err());
}
