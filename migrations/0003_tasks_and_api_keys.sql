-- The task manager's rows, users' and rules' API keys, the queue of keys
-- waiting to be invalidated, and the parameters of actions scheduled on a
-- rule's behalf (which hold a key's secret, encrypted).

create table tasks (
    id text primary key,
    task_type text not null,
    params text not null default '{}',
    state text not null default '{}',
    -- Recurring tasks: every interval_ms. One-off tasks: null.
    interval_ms bigint,
    -- When the task is next due (a retry's time while retrying).
    run_at bigint not null,
    status text not null default 'idle',
    -- Failed attempts in a row (reset after a success).
    attempts bigint not null default 0,
    retry_at bigint,
    -- The claim: which node (and which claim of it) holds the task, until when.
    owner text,
    lease_until bigint,
    started_at bigint,
    last_run_at bigint,
    last_duration_ms bigint,
    last_error text,
    last_result text,
    runs bigint not null default 0,
    failures bigint not null default 0,
    created_at bigint not null
);

create index tasks_due on tasks (status, run_at);
create index tasks_type on tasks (task_type);

create table api_keys (
    id text primary key,
    name text not null,
    user_id text not null references users (id),
    -- personal | rule
    key_type text not null,
    rule_id text,
    -- JSON array of the role names the key is limited to; []: all the owner's.
    roles text not null default '[]',
    secret_hash text not null,
    created_at bigint not null,
    expires_at bigint,
    invalidated_at bigint
);

create index api_keys_user on api_keys (user_id);
create index api_keys_rule on api_keys (rule_id);

create table api_key_pending_invalidation (
    api_key_id text primary key references api_keys (id),
    created_at bigint not null,
    -- rotated | rule_deleted | user_request
    reason text not null,
    -- Set while one run of the invalidation task handles the row (inside
    -- its transaction; a crash rolls it back).
    batch text
);

create index api_key_pending_invalidation_created on api_key_pending_invalidation (created_at);

create table action_task_params (
    id text primary key,
    task_id text not null,
    -- In clear, so the invalidation queue can see which keys are still needed.
    api_key_id text not null,
    -- AES-256-GCM: base64(nonce || ciphertext), bound to this row's id.
    api_key_secret text not null,
    params text not null default '{}',
    created_at bigint not null
);

create index action_task_params_key on action_task_params (api_key_id);
create index action_task_params_task on action_task_params (task_id);
