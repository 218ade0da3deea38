-- Cloud connectors, package policies and the permission verifier (issue 17).

create table cloud_connectors (
    id text primary key,
    name text not null,
    -- lower(name): names are unique without case (Kibana's rule), by index.
    name_key text not null unique,
    namespace text not null,
    cloud_provider text not null,
    account_type text not null,
    -- JSON object of the text variables.
    vars text not null,
    -- Encrypted JSON object of the secret variables (crypto::Cipher, bound
    -- to the id); secret_names lists them, so reads need no decryption.
    secrets text not null,
    secret_names text not null,
    verification_status text,
    verification_started_at bigint,
    verification_failed_at bigint,
    verification_failed_reason text,
    verification_finished_at bigint,
    -- "Verify now": the next run takes it first, cooldown or not.
    verification_requested_at bigint,
    created_at bigint not null,
    created_by text not null,
    updated_at bigint not null,
    updated_by text not null
);

create table package_policies (
    id text primary key,
    name text not null unique,
    description text,
    namespace text not null,
    policy_id text not null references agent_policies (id),
    package_name text not null,
    package_title text,
    package_version text not null,
    -- JSON array of Fleet's inputs.
    inputs text not null,
    enabled bigint not null,
    cloud_connector_id text references cloud_connectors (id),
    revision bigint not null,
    created_at bigint not null,
    created_by text not null,
    updated_at bigint not null,
    updated_by text not null
);
create index package_policies_policy on package_policies (policy_id);
create index package_policies_connector on package_policies (cloud_connector_id) where cloud_connector_id is not null;

-- A verifier policy (Kibana's is_verifier) lives until its results arrive
-- or expires_at, whichever is first.
alter table agent_policies add column is_verifier bigint not null default 0;
alter table agent_policies add column cloud_connector_id text;
alter table agent_policies add column expires_at bigint;
-- One verifier deployment at a time, whichever node creates it.
create unique index agent_policies_one_verifier on agent_policies (is_verifier) where is_verifier = 1;

-- A verifier's enrollment key works once.
alter table enrollment_api_keys add column single_use bigint not null default 0;

-- One verification of a connector: its plan while in flight, its outcome after.
create table cloud_connector_verifications (
    id text primary key,
    connector_id text not null references cloud_connectors (id),
    agent_policy_id text,
    -- JSON array of core::cloud_connectors::PermissionCheck.
    checks text not null,
    started_at bigint not null,
    finished_at bigint,
    status text,
    reason text
);
create index cloud_connector_verifications_connector on cloud_connector_verifications (connector_id, started_at);

-- One record per permission checked (verifier_otel's log records).
create table cloud_connector_permissions (
    verification_id text not null references cloud_connector_verifications (id),
    package_policy_id text not null,
    policy_template text not null,
    package_name text not null,
    action text not null,
    status text not null,
    required bigint not null,
    error_code text,
    message text,
    method text,
    duration_ms bigint,
    received_at bigint not null,
    primary key (verification_id, package_policy_id, policy_template, action)
);
