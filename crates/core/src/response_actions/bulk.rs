//! Bulk response actions (issue 16): one command to many hosts, chosen by id
//! or by kuery (a whole policy is `policy_id:"…"`). A selection becomes one
//! action per [`MAX_HOSTS_PER_ACTION`] hosts, linked by a bulk id; hosts that
//! cannot take the command are left out and listed with why (the
//! single-host rule, [`endpoint_refusal`](super::endpoint_refusal)). Its
//! progress is each host's [`host_outcome`] in its action, the function the
//! history and the console read, so the three never disagree.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AUTHZ_FAILURE, ActionDetails, ActionStatus, Canceller, MAX_COMMENT_CHARS, MAX_ENDPOINT_IDS, Outcome, Refusal, ResponseAgentType, ResponseCommand,
    command_refusal, endpoint_authz, host_outcome, parameters_of,
};
use crate::actions::License;
use crate::authz::Privilege;
use crate::fleet_api::BulkTarget;

/// Hosts of one action at most: a larger selection becomes several actions,
/// so no transaction, agent-action statement or event grows with the fleet.
pub const MAX_HOSTS_PER_ACTION: usize = 1_000;
/// Hosts of one bulk action at most: ids sent, or agents a kuery matches.
pub const MAX_BULK_HOSTS: usize = MAX_ENDPOINT_IDS;
/// Refused hosts listed by name at most; `refusedTotal` counts them all.
pub const MAX_LISTED_REFUSALS: usize = 100;
/// Per-host rows of a bulk's status page: by default, and at most.
pub const DEFAULT_HOSTS_PAGE_SIZE: u64 = 100;
pub const MAX_HOSTS_PAGE_SIZE: u64 = 1_000;

/// Why `command` cannot go to many hosts at once, or `None`.
pub fn bulk_refusal(command: ResponseCommand) -> Option<String> {
    let name = command.console_name();
    match command {
        ResponseCommand::Cancel => Some("cancel cannot be sent in bulk: cancel the bulk action's pending hosts instead".into()),
        ResponseCommand::Upload => Some("upload cannot be sent in bulk: it carries a file; send it to each host from the console or the API".into()),
        ResponseCommand::KillProcess | ResponseCommand::SuspendProcess => {
            Some(format!("{name} cannot be sent in bulk: a process id or entity id names a process on one host"))
        }
        _ => None,
    }
}

/// The commands a user may send in bulk (privilege and licence), in the
/// commands' order; empty: no bulk action at all.
pub fn bulk_commands(privileges: &[Privilege], license: License) -> Vec<ResponseCommand> {
    ResponseCommand::ALL.iter().copied().filter(|c| bulk_refusal(*c).is_none() && command_refusal(privileges, license, *c).is_none()).collect()
}

/// How many actions `hosts` hosts become.
pub fn action_count(hosts: usize) -> usize {
    hosts.div_ceil(MAX_HOSTS_PER_ACTION)
}

/// The hosts of each action, in order: at most [`MAX_HOSTS_PER_ACTION`] each.
pub fn chunks<T>(hosts: &[T]) -> std::slice::Chunks<'_, T> {
    hosts.chunks(MAX_HOSTS_PER_ACTION)
}

// ---- the request ----

/// `POST …/response_actions/bulk` and its `_preview`: one command, for the
/// hosts `agents` names: a list of agent ids, or a kuery as the Fleet view
/// sends it (inactive agents only with `include_inactive`, as the view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkResponseActionRequest {
    /// Not `cancel`, `upload`, `kill-process` or `suspend-process` ([`bulk_refusal`]).
    pub command: ResponseCommand,
    /// 1 to 10,000 agent ids, or a kuery matching at most 10,000 agents.
    pub agents: BulkTarget,
    /// With a kuery: also inactive agents (the Fleet view's "Show inactive").
    #[serde(default)]
    pub include_inactive: bool,
    /// As the command's single-host route takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A bulk request that passed [`validate_bulk_request`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBulkRequest {
    pub command: ResponseCommand,
    /// The agent ids sent, without repeats, in order; `None` for a kuery.
    pub ids: Option<Vec<String>>,
    pub parameters: Value,
    pub comment: Option<String>,
}

/// Checks a bulk request (the command, the ids, the comment and the
/// parameters, with the single-host routes' messages), or the 400's message.
/// A kuery's own limits are the kuery parser's.
pub fn validate_bulk_request(request: &BulkResponseActionRequest) -> Result<ValidBulkRequest, String> {
    if let Some(reason) = bulk_refusal(request.command) {
        return Err(format!("[request body.command]: {reason}"));
    }
    let ids = match &request.agents {
        BulkTarget::Kuery(_) => None,
        BulkTarget::Ids(ids) => {
            if ids.is_empty() {
                return Err("[request body.agents]: array size is [0], but cannot be smaller than [1]".into());
            }
            if ids.len() > MAX_BULK_HOSTS {
                return Err(format!("[request body.agents]: array size is [{}], but cannot be greater than [{MAX_BULK_HOSTS}]", ids.len()));
            }
            if let Some(i) = ids.iter().position(|id| id.as_str().trim().is_empty()) {
                return Err(format!("[request body.agents.{i}]: value has length [0] but it must have a minimum length of [1]."));
            }
            let mut unique: Vec<String> = Vec::with_capacity(ids.len());
            let mut seen = std::collections::HashSet::with_capacity(ids.len());
            for id in ids {
                if seen.insert(id.as_str()) {
                    unique.push(id.as_str().to_owned());
                }
            }
            Some(unique)
        }
    };
    if let Some(comment) = &request.comment
        && comment.chars().count() > MAX_COMMENT_CHARS
    {
        return Err(format!(
            "[request body.comment]: value has length [{}] but it must have a maximum length of [{MAX_COMMENT_CHARS}].",
            comment.chars().count()
        ));
    }
    let parameters = parameters_of(request.command, ResponseAgentType::Endpoint, request.parameters.as_ref())?;
    Ok(ValidBulkRequest { command: request.command, ids, parameters, comment: request.comment.clone().filter(|c| !c.trim().is_empty()) })
}

/// The message of a selection larger than a bulk action takes.
pub fn too_many_hosts(matched: usize) -> String {
    format!("[request body.agents]: the kuery matches {matched} agents; a bulk action takes at most {MAX_BULK_HOSTS}: narrow the kuery")
}

// ---- the preview ----

/// A host of the selection that cannot take the command, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefusedHost {
    pub agent_id: String,
    /// Absent for an id Fleet does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    pub reason: String,
}

/// The first [`MAX_LISTED_REFUSALS`] of `refused`, and how many there are.
pub fn listed(mut refused: Vec<RefusedHost>) -> (usize, Vec<RefusedHost>) {
    let total = refused.len();
    refused.truncate(MAX_LISTED_REFUSALS);
    (total, refused)
}

/// `POST …/bulk/_preview`: what sending would do, for the confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkPreview {
    pub command: ResponseCommand,
    /// Hosts the selection names: the ids sent (without repeats), or the agents the kuery matches.
    pub selected: usize,
    /// Of those, the hosts that can take the command now (offline ones too: the action waits).
    pub eligible: usize,
    /// The actions it becomes: one per 1,000 hosts.
    pub actions: usize,
    /// How many hosts cannot take it; `refused` lists the first 100 with why.
    pub refused_total: usize,
    pub refused: Vec<RefusedHost>,
}

impl BulkPreview {
    pub fn of(command: ResponseCommand, eligible: usize, refused: Vec<RefusedHost>) -> BulkPreview {
        let (refused_total, refused) = listed(refused);
        BulkPreview { command, selected: eligible + refused_total, eligible, actions: action_count(eligible), refused_total, refused }
    }
}

/// `POST …/response_actions/bulk`: the bulk action, the actions it became,
/// and the hosts left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkCreated {
    pub bulk_id: String,
    pub command: ResponseCommand,
    /// In the order they were sent; each at most 1,000 hosts.
    pub action_ids: Vec<String>,
    /// Hosts the command went to.
    pub hosts: usize,
    pub refused_total: usize,
    pub refused: Vec<RefusedHost>,
}

// ---- progress ----

/// Hosts by outcome; they add up to `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkCounts {
    pub total: usize,
    pub pending: usize,
    pub successful: usize,
    /// Failed by the agent (not cancelled, not expired).
    pub failed: usize,
    pub canceled: usize,
    pub expired: usize,
}

impl BulkCounts {
    fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        *self.of_mut(outcome) += 1;
    }

    fn of_mut(&mut self, outcome: Outcome) -> &mut usize {
        match outcome {
            Outcome::Pending => &mut self.pending,
            Outcome::Successful => &mut self.successful,
            Outcome::Failed => &mut self.failed,
            Outcome::Canceled => &mut self.canceled,
            Outcome::Expired => &mut self.expired,
        }
    }

    /// How many hosts are in `outcome`.
    pub fn of(&self, outcome: Outcome) -> usize {
        match outcome {
            Outcome::Pending => self.pending,
            Outcome::Successful => self.successful,
            Outcome::Failed => self.failed,
            Outcome::Canceled => self.canceled,
            Outcome::Expired => self.expired,
        }
    }

    /// The bulk's status as the history would give one action of all its
    /// hosts: pending while any is, then successful only if every one was.
    pub fn status(&self) -> ActionStatus {
        if self.pending > 0 {
            ActionStatus::Pending
        } else if self.total > 0 && self.successful == self.total {
            ActionStatus::Successful
        } else {
            ActionStatus::Failed
        }
    }
}

/// One host of a bulk action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkHost {
    pub agent_id: String,
    pub host_name: String,
    /// The action that carries the command to this host.
    pub action_id: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Who cancelled it for this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What is stored of a bulk action itself (its hosts are its actions').
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRecord {
    pub id: String,
    pub command: ResponseCommand,
    pub agent_type: ResponseAgentType,
    pub parameters: Value,
    pub comment: Option<String>,
    pub created_by: String,
    pub started_at: String,
    pub kuery: Option<String>,
    pub selected: usize,
    pub refused_total: usize,
    pub refused: Vec<RefusedHost>,
}

/// `GET …/response_actions/bulk/{id}`: the bulk action, its counts, and a
/// page of its hosts (filtered by `outcome`, by host name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkStatus {
    pub bulk_id: String,
    pub command: ResponseCommand,
    pub agent_type: ResponseAgentType,
    pub created_by: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub parameters: Value,
    /// The kuery that chose the hosts; absent when they were named by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kuery: Option<String>,
    /// Hosts the selection named, sent to or not.
    pub selected: usize,
    /// Pending while any host is; successful only if every host succeeded.
    pub status: ActionStatus,
    /// Every host the command went to.
    pub counts: BulkCounts,
    pub action_ids: Vec<String>,
    /// Hosts of the selection that could not take the command (the first 100 listed).
    pub refused_total: usize,
    pub refused: Vec<RefusedHost>,
    /// This page of hosts, by host name.
    pub hosts: Vec<BulkHost>,
    /// Hosts the `outcome` filter keeps.
    pub hosts_total: usize,
    pub page: u64,
    pub page_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// Which hosts of a bulk's status to list: `page`, `pageSize`, `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkHostsQuery {
    pub page: u64,
    pub page_size: u64,
    pub outcome: Option<Outcome>,
}

impl Default for BulkHostsQuery {
    fn default() -> BulkHostsQuery {
        BulkHostsQuery { page: 1, page_size: DEFAULT_HOSTS_PAGE_SIZE, outcome: None }
    }
}

impl BulkHostsQuery {
    /// Reads `key=value` pairs, with the 400's message for a bad one.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<BulkHostsQuery, String> {
        let mut query = BulkHostsQuery::default();
        for (key, value) in pairs {
            match key {
                "page" => query.page = super::page_param(value)?,
                "pageSize" => query.page_size = super::page_size_param(value, MAX_HOSTS_PAGE_SIZE)?,
                "outcome" if value.is_empty() => query.outcome = None,
                "outcome" => {
                    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    query.outcome = Some(
                        Outcome::parse(value)
                            .ok_or_else(|| format!("[request query.outcome]: expected one of [{}] but got [{value}]", names.join(", ")))?,
                    );
                }
                other => return Err(format!("[request query.{other}]: definition for this key is missing")),
            }
        }
        Ok(query)
    }

    /// The query string's pairs (defaults left out).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.page != 1 {
            pairs.push(("page", self.page.to_string()));
        }
        if self.page_size != DEFAULT_HOSTS_PAGE_SIZE {
            pairs.push(("pageSize", self.page_size.to_string()));
        }
        if let Some(outcome) = self.outcome {
            pairs.push(("outcome", outcome.as_str().to_owned()));
        }
        pairs
    }
}

/// The status of bulk action `record` from its actions as the history reads
/// them: every host counted, the page `query` asks for listed by host name.
pub fn bulk_status(record: BulkRecord, actions: &[ActionDetails], query: &BulkHostsQuery) -> BulkStatus {
    let mut counts = BulkCounts::default();
    let mut hosts = Vec::new();
    for action in actions {
        for agent_id in &action.agents {
            let outcome = host_outcome(action, agent_id);
            counts.add(outcome);
            if query.outcome.is_some_and(|wanted| wanted != outcome) {
                continue;
            }
            let state = action.agent_state.get(agent_id);
            hosts.push(BulkHost {
                agent_id: agent_id.clone(),
                host_name: action.host_name(agent_id).to_owned(),
                action_id: action.id.clone(),
                outcome,
                completed_at: state.and_then(|s| s.completed_at.clone()),
                canceled_by: state.and_then(|s| s.canceled_by.clone()),
                errors: state.and_then(|s| s.errors.clone()).unwrap_or_default(),
            });
        }
    }
    hosts.sort_by(|a, b| a.host_name.cmp(&b.host_name).then_with(|| a.agent_id.cmp(&b.agent_id)));
    let hosts_total = hosts.len();
    let skip = usize::try_from(query.page.saturating_sub(1).saturating_mul(query.page_size)).unwrap_or(usize::MAX);
    let take = usize::try_from(query.page_size).unwrap_or(usize::MAX);
    let hosts = hosts.into_iter().skip(skip).take(take).collect();
    BulkStatus {
        bulk_id: record.id,
        command: record.command,
        agent_type: record.agent_type,
        created_by: record.created_by,
        started_at: record.started_at,
        comment: record.comment,
        parameters: record.parameters,
        kuery: record.kuery,
        selected: record.selected,
        status: counts.status(),
        counts,
        action_ids: actions.iter().map(|a| a.id.clone()).collect(),
        refused_total: record.refused_total,
        refused: record.refused,
        hosts,
        hosts_total,
        page: query.page,
        page_size: query.page_size,
        outcome: query.outcome,
    }
}

// ---- cancel ----

/// Why `who` may not cancel the pending hosts of a bulk action of `command`
/// at all, or `None`: the cancel route's own authz, then the original
/// command's ([`cancel_refusal`](super::cancel_refusal)'s first checks).
/// `cancel_refusal` still decides for each of its actions (agents that
/// cannot cancel, hosts that answered meanwhile).
pub fn bulk_cancel_refusal(who: &Canceller<'_>, command: ResponseCommand) -> Option<Refusal> {
    if !endpoint_authz(who.privileges, who.license).can_cancel_action {
        return Some(Refusal::new(403, AUTHZ_FAILURE));
    }
    command_refusal(who.privileges, who.license, command)
        .map(|reason| Refusal::new(403, format!("{AUTHZ_FAILURE}: you may not cancel this action because {reason}")))
}

/// `POST …/bulk/{id}/_cancel`: why, optionally.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkCancelRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl BulkCancelRequest {
    /// The comment, checked as an action's, or the 400's message.
    pub fn comment(&self) -> Result<Option<String>, String> {
        match &self.comment {
            Some(comment) if comment.chars().count() > MAX_COMMENT_CHARS => Err(format!(
                "[request body.comment]: value has length [{}] but it must have a maximum length of [{MAX_COMMENT_CHARS}].",
                comment.chars().count()
            )),
            other => Ok(other.clone().filter(|c| !c.trim().is_empty())),
        }
    }
}

/// A cancel sent for one action of the bulk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkCancelSent {
    /// The bulk's action it cancels.
    pub action_id: String,
    /// The cancel action, in the history.
    pub cancel_action_id: String,
    /// Its hosts still pending, which the cancel goes to.
    pub hosts: usize,
}

/// An action of the bulk that could not be cancelled, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkCancelRefused {
    pub action_id: String,
    pub message: String,
}

/// What `_cancel` did: one cancel per action with pending hosts; actions
/// with none pending are in neither list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkCancelResponse {
    pub bulk_id: String,
    pub sent: Vec<BulkCancelSent>,
    pub refused: Vec<BulkCancelRefused>,
}

#[cfg(test)]
mod tests;
