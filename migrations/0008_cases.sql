-- Cases (Kibana's /api/cases). Users are JSON ({username, full_name, email,
-- profile_uid}); tags, assignees and the connector are JSON too, with the
-- tags and assignees also in their own tables so _find can filter on them.
-- `version` counts changes: a PATCH updates only the version it read.

create table cases (
    id text primary key,
    version bigint not null,
    title text not null,
    description text not null,
    tags text not null,
    status text not null,
    severity text not null,
    owner text not null,
    connector text not null,
    settings text not null,
    assignees text not null,
    category text,
    duration bigint,
    created_at bigint not null,
    created_by text not null,
    -- created_by's username, for the reporters filter.
    reporter text not null,
    updated_at bigint,
    updated_by text,
    closed_at bigint,
    closed_by text
);
create index cases_by_created_at on cases (created_at);

create table case_tags (
    case_id text not null references cases (id) on delete cascade,
    tag text not null,
    primary key (case_id, tag)
);
create index case_tags_by_tag on case_tags (tag);

create table case_assignees (
    case_id text not null references cases (id) on delete cascade,
    uid text not null,
    primary key (case_id, uid)
);
create index case_assignees_by_uid on case_assignees (uid);

-- Comments and alert attachments. An alert attachment keeps alertId and
-- index as sent (a string or an array, as JSON).
create table case_attachments (
    id text primary key,
    case_id text not null references cases (id) on delete cascade,
    version bigint not null,
    type text not null,
    comment text,
    alert_id text,
    alert_index text,
    rule_id text,
    rule_name text,
    owner text not null,
    created_at bigint not null,
    created_by text not null
);
create index case_attachments_by_case on case_attachments (case_id, created_at);

-- Each alert of a case once: the key makes attaching the same alert again a
-- no-op, so a rule that runs twice adds nothing the second time.
create table case_alerts (
    case_id text not null references cases (id) on delete cascade,
    alert_id text not null,
    alert_index text not null,
    attachment_id text not null,
    primary key (case_id, alert_id, alert_index)
);

-- Which case a rule's .cases action keeps for each group of its alerts
-- (Kibana's "oracle records"): the key makes two nodes running the same rule
-- agree on one case; `case_id` changes whenever the group moves to another
-- case, so an update conditional on it loses no race. `counter` numbers the
-- group's cases (the title's "(2)"); the window runs from `window_started_at`.
create table case_rule_groups (
    rule_id text not null,
    owner text not null,
    grouping_hash text not null,
    grouping text not null,
    counter bigint not null,
    case_id text not null,
    window_started_at bigint not null,
    updated_at bigint not null,
    primary key (rule_id, owner, grouping_hash)
);
