-- Every run of a connector: when, how it ended, why, whether to retry, and
-- who ran it (a user through the API; a rule's key owner later). Only the
-- newest 200 per connector are kept.

create table connector_executions (
    id text primary key,
    connector_id text not null,
    started_at bigint not null,
    duration_ms bigint not null,
    status text not null,
    message text,
    service_message text,
    retry bigint,
    actor text not null,
    source text not null
);
create index connector_executions_by_connector on connector_executions (connector_id, started_at);
