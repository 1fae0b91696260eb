-- Audit records become a hash chain and carry the governance fields.
-- Records written before this migration are sealed into the chain, in seq
-- order, by the Go step that runs after these statements (sealAuditChain).
ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS version text;
ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS policy text;
ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS evidence_hash text;
ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS prev_hash text;
ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS hash text;
