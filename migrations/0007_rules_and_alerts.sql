-- Rules, their alerts and runs. The change history of connectors becomes
-- the one configuration audit trail, for rules too.

create table config_changes (
    id text primary key,
    -- connector | rule
    object_type text not null,
    object_id text not null,
    change text not null,
    changed_by text not null,
    changed_at bigint not null,
    summary text not null
);
create index config_changes_by_object on config_changes (object_type, object_id, changed_at);
insert into config_changes (id, object_type, object_id, change, changed_by, changed_at, summary)
    select id, 'connector', connector_id, change, changed_by, changed_at, summary from connector_changes;
drop table connector_changes;

create table rules (
    id text primary key,
    name text not null,
    rule_type_id text not null,
    consumer text not null,
    enabled bigint not null default 1,
    -- JSON: tags, the type's params, the two action lists (core::rules).
    tags text not null default '[]',
    schedule_interval text not null,
    params text not null default '{}',
    throttle text,
    notify_when text,
    actions text not null default '[]',
    system_actions text not null default '[]',
    mute_all bigint not null default 0,
    muted_alert_ids text not null default '[]',
    created_by text not null,
    created_at bigint not null,
    updated_by text not null,
    updated_at bigint not null,
    -- The rule runs as the user who saved it last, with this key (its
    -- secret encrypted, bound to the rule's id; api_keys holds the hash).
    api_key_owner text,
    api_key_id text,
    api_key_secret text,
    revision bigint not null default 0,
    -- execution_status and last_run, as the API shows them.
    execution_status text not null default 'pending',
    last_execution_date bigint,
    last_duration_ms bigint,
    execution_error_reason text,
    execution_error_message text,
    last_run text,
    -- When each summary or system action last fired (core::rules::ScheduleLog).
    schedule_log text not null default '{}'
);

-- One row per active span of an alert (kibana.alert.uuid); at most one
-- active per rule and instance.
create table alerts (
    id text primary key,
    rule_id text not null,
    instance_id text not null,
    status text not null,
    action_group text not null,
    started_at bigint not null,
    ended_at bigint,
    context text not null default '{}',
    -- When each per-alert action last fired for it.
    schedule_log text not null default '{}',
    updated_at bigint not null
);
create unique index alerts_one_active on alerts (rule_id, instance_id) where status = 'active';
create index alerts_by_rule on alerts (rule_id, status, started_at);
create index alerts_recent on alerts (updated_at);

create table rule_runs (
    id text primary key,
    rule_id text not null,
    started_at bigint not null,
    duration_ms bigint not null,
    outcome text not null,
    message text,
    new_alerts bigint not null,
    ongoing_alerts bigint not null,
    recovered_alerts bigint not null,
    actions_scheduled bigint not null,
    -- schedule | fleet
    run_trigger text not null
);
create index rule_runs_by_rule on rule_runs (rule_id, started_at);

-- Asked to run while it was running: one more run follows at once (coalesced).
alter table tasks add column run_again bigint not null default 0;

-- Runs on a rule's behalf are also the rule's action log (system actions,
-- which have no connector row, are logged here too).
alter table connector_executions add column rule_id text;
create index connector_executions_by_rule on connector_executions (rule_id, started_at);
