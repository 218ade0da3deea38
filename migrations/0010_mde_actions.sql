-- Response actions on Microsoft Defender for Endpoint hosts: each target
-- keeps the machine action MDE created for it (Kibana's meta.machineActionId),
-- which the polling task follows and a cancel names.
alter table response_action_targets add column external_id text;
