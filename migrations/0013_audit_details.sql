-- What an agent's final message may add (issue 18): who and what ran the
-- command, and where a migrated agent went (JSON, core's AuditDetails,
-- checked before it is stored); and a Detached Endpoint's latest report,
-- its proof of life.
alter table agents add column audit_unenrolled_details text;
alter table agents add column last_heard_at bigint;
