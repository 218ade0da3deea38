-- Fleet: policies, enrollment keys, agents, actions for agents, and each
-- agent's activity log.

create table agent_policies (
    id text primary key,
    name text not null unique,
    namespace text not null,
    description text,
    is_managed bigint not null default 0,
    inactivity_timeout bigint not null,
    revision bigint not null default 1,
    created_at bigint not null,
    updated_at bigint not null
);

create table enrollment_api_keys (
    id text primary key,
    name text,
    api_key_id text not null unique,
    -- Fleet shows enrollment tokens to its administrators, so the token is
    -- kept; the hash is what enrollment is checked against.
    api_key text not null,
    secret_hash text not null,
    policy_id text not null references agent_policies (id),
    active bigint not null default 1,
    created_at bigint not null,
    expires_at bigint
);

create table agents (
    id text primary key,
    policy_id text not null references agent_policies (id),
    agent_type text not null,
    active bigint not null default 1,
    enrolled_at bigint not null,
    unenrolled_at bigint,
    unenrollment_started_at bigint,
    audit_unenrolled_reason text,
    audit_unenrolled_time bigint,
    policy_revision bigint,
    last_checkin bigint,
    last_checkin_status text,
    last_checkin_message text,
    local_metadata text not null,
    user_provided_metadata text not null,
    tags text not null,
    components text not null,
    hostname text not null,
    version text not null,
    -- The agent's API key: only the SHA-256 of its secret is stored.
    access_api_key_id text not null unique,
    access_key_hash text not null,
    key_revoked bigint not null default 0,
    last_known_status text,
    rejected_count bigint not null default 0,
    last_rejected_at bigint,
    force_unenrolled_by text,
    force_unenrolled_at bigint
);

create index agents_policy_id on agents (policy_id);

create table agent_actions (
    id text primary key,
    agent_id text not null references agents (id),
    action_type text not null,
    data text not null,
    created_at bigint not null,
    created_by text,
    delivered_at bigint,
    acked_at bigint,
    ack_error text
);

create index agent_actions_pending on agent_actions (agent_id, acked_at);
create index agent_actions_created on agent_actions (created_at);

create table agent_events (
    id text primary key,
    agent_id text not null references agents (id),
    kind text not null,
    message text not null,
    actor text,
    created_at bigint not null
);

create index agent_events_agent on agent_events (agent_id, created_at);
