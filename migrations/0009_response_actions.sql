-- Response actions (Elastic Defend's, kibana-api.md §1), the files they move,
-- and the scripts library.

-- One response action goes to many agents under one id (as a Fleet action
-- does), so an agent action is keyed by its id and its agent.
create table agent_actions_keyed (
    id text not null,
    agent_id text not null references agents (id),
    action_type text not null,
    data text not null,
    created_at bigint not null,
    created_by text,
    delivered_at bigint,
    acked_at bigint,
    ack_error text,
    primary key (id, agent_id)
);
insert into agent_actions_keyed (id, agent_id, action_type, data, created_at, created_by, delivered_at, acked_at, ack_error)
    select id, agent_id, action_type, data, created_at, created_by, delivered_at, acked_at, ack_error from agent_actions;
drop table agent_actions;
alter table agent_actions_keyed rename to agent_actions;
create index agent_actions_pending on agent_actions (agent_id, acked_at);
create index agent_actions_created on agent_actions (created_at);

-- `status` is stored so the history filters by it with an index: pending
-- until every target answered (then successful or failed); a pending action
-- past `expires_at` reads as failed/expired until the expiry task writes it.
create table response_actions (
    id text primary key,
    command text not null,
    agent_type text not null,
    parameters text not null,
    comment text,
    created_by text not null,
    created_at bigint not null,
    expires_at bigint not null,
    status text not null,
    completed_at bigint,
    origin text not null,
    alert_ids text,
    case_ids text,
    rule_id text,
    rule_name text,
    -- upload: the file sent to the hosts; runscript: the library script's file
    file_id text
);
create index response_actions_created on response_actions (created_at);
create index response_actions_status on response_actions (status, created_at);
create index response_actions_user on response_actions (created_by, created_at);
create index response_actions_expiry on response_actions (expires_at) where status = 'pending';

-- One row per target agent. No foreign key to `agents`: the history keeps
-- the host name of an agent that was removed.
create table response_action_targets (
    action_id text not null references response_actions (id) on delete cascade,
    agent_id text not null,
    created_at bigint not null,
    host_name text not null,
    cancel_supported bigint not null,
    completed_at bigint,
    was_successful bigint not null default 0,
    was_canceled bigint not null default 0,
    canceled_by text,
    cancel_action_id text,
    is_expired bigint not null default 0,
    errors text,
    output text,
    primary key (action_id, agent_id)
);
create index response_action_targets_agent on response_action_targets (agent_id, created_at);

-- Files: from a host (a get-file result, id `<action_id>.<agent_id>`), to
-- hosts (an upload action's file), and the scripts library's files.
create table response_files (
    id text primary key,
    direction text not null,
    action_id text,
    agent_id text,
    upload_id text unique,
    name text not null,
    mime_type text not null,
    size bigint not null,
    sha256 text,
    status text not null,
    chunk_size bigint not null,
    created_at bigint not null,
    expires_at bigint
);
create index response_files_expiry on response_files (expires_at);

create table response_file_chunks (
    file_id text not null references response_files (id) on delete cascade,
    num bigint not null,
    sha2 text not null,
    data bytea not null,
    primary key (file_id, num)
);

create table scripts (
    id text primary key,
    name text not null unique,
    description text not null,
    instructions text not null,
    example text not null,
    platform text not null,
    requires_input bigint not null,
    file_id text not null references response_files (id),
    file_name text not null,
    file_size bigint not null,
    file_hash text not null,
    created_by text not null,
    created_at bigint not null,
    updated_by text not null,
    updated_at bigint not null
);
