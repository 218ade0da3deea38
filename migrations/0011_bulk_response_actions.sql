-- Bulk response actions (issue 16): one command to many hosts becomes one
-- action per 1,000 hosts, each linked to its bulk. The bulk keeps what only
-- it knows: who sent what to which selection, and the hosts of the
-- selection that could not take the command (the first 100, with why).
create table response_action_bulks (
    id text primary key,
    command text not null,
    agent_type text not null,
    parameters text not null,
    comment text,
    created_by text not null,
    created_at bigint not null,
    -- The kuery that chose the hosts; null when they were named by id.
    kuery text,
    selected bigint not null,
    refused_total bigint not null,
    -- JSON: [{"agentId", "hostName", "reason"}], at most 100.
    refused text not null
);
create index response_action_bulks_created on response_action_bulks (created_at);

-- Null for an action sent on its own. Both engines add a nullable column
-- with a reference in place (SQLite: its default must be null).
alter table response_actions add column bulk_id text references response_action_bulks (id);
create index response_actions_bulk on response_actions (bulk_id) where bulk_id is not null;
