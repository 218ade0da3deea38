-- Connectors (the actions framework). System actions are not here: they are
-- built from the type registry in memory, with fixed ids. Secrets are
-- encrypted with the encryption key, bound to the connector's id.

create table connectors (
    id text primary key,
    name text not null,
    connector_type_id text not null,
    config text not null default '{}',
    secrets text not null,
    created_at bigint not null,
    created_by text not null,
    updated_at bigint not null,
    updated_by text not null
);

-- Who changed which connector, when, and what (field names only, never a secret's value).
create table connector_changes (
    id text primary key,
    connector_id text not null,
    change text not null,
    changed_by text not null,
    changed_at bigint not null,
    summary text not null
);
create index connector_changes_by_connector on connector_changes (connector_id, changed_at);
