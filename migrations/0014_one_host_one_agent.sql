-- One host, one agent (issue 18). Agents report a host fingerprint
-- (local_metadata.host.id); an agent that enrolls with the fingerprint of an
-- active agent marks that one replaced by it (replaced_by, replaced_at) and
-- names it (replaces). A replaced agent that checks in again puts both in
-- conflict (host_conflict_with names the other) until an analyst unenrolls
-- one. replace_token_hash: SHA-256 of the token the agent enrolled with, so
-- the same agent can re-enroll and keep its id where its policy allows it.
alter table agents add column host_id text;
alter table agents add column replaced_by text;
alter table agents add column replaced_at bigint;
alter table agents add column replaces text;
alter table agents add column host_conflict_with text;
alter table agents add column replace_token_hash text;
create index agents_host_id on agents (host_id);
alter table agent_policies add column keep_agent_id_on_reenroll integer not null default 0;
