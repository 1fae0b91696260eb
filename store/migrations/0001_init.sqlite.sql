-- The schema gorm's AutoMigrate built before versioned migrations, to the
-- letter (declared types, index names). Every statement is guarded so that
-- a database AutoMigrate created is adopted as it stands; the migration
-- runner emulates ADD COLUMN IF NOT EXISTS, which SQLite lacks.

CREATE TABLE IF NOT EXISTS `models` (`name` text,`owner` text,`team` text,`risk_tier` text,`description` text,`data_domain` text,`tags` text,`created_at` datetime,PRIMARY KEY (`name`));
CREATE INDEX IF NOT EXISTS `idx_models_team` ON `models`(`team`);

CREATE TABLE IF NOT EXISTS `versions` (`model` text,`version` text,`artifact_uri` text,`run_id` text,`source` text,`run_link` text,`registry` text,`registry_model` text,`registry_version` text,`metrics` text,`created_by` text,`created_at` datetime,PRIMARY KEY (`model`,`version`));
-- Databases created before lineage import lack these columns.
ALTER TABLE `versions` ADD COLUMN IF NOT EXISTS `run_link` text;
ALTER TABLE `versions` ADD COLUMN IF NOT EXISTS `registry` text;
ALTER TABLE `versions` ADD COLUMN IF NOT EXISTS `registry_model` text;
ALTER TABLE `versions` ADD COLUMN IF NOT EXISTS `registry_version` text;

CREATE TABLE IF NOT EXISTS `targets` (`name` text,`doc` text,`created_at` datetime,PRIMARY KEY (`name`));

CREATE TABLE IF NOT EXISTS `promotions` (`id` text,`model` text,`target` text,`status` text,`active_key` text,`idem_key` text,`requested_by` text,`seq` integer,`doc` text,`created_at` datetime,PRIMARY KEY (`id`));
CREATE INDEX IF NOT EXISTS `idx_prom_model_target` ON `promotions`(`model`,`target`);
CREATE INDEX IF NOT EXISTS `idx_promotions_status` ON `promotions`(`status`);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_promotions_active_key` ON `promotions`(`active_key`);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_promotions_idem_key` ON `promotions`(`idem_key`);
CREATE INDEX IF NOT EXISTS `idx_promotions_created_at` ON `promotions`(`created_at`);

CREATE TABLE IF NOT EXISTS `deployments` (`model` text,`target` text,`doc` text,PRIMARY KEY (`model`,`target`));

CREATE TABLE IF NOT EXISTS `audit_records` (`seq` integer PRIMARY KEY AUTOINCREMENT,`key` text,`time` datetime,`actor` text,`action` text,`subject` text,`promotion_id` text,`model` text,`target` text,`decision` text,`details` text);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_audit_records_key` ON `audit_records`(`key`);
CREATE INDEX IF NOT EXISTS `idx_audit_records_actor` ON `audit_records`(`actor`);
CREATE INDEX IF NOT EXISTS `idx_audit_records_promotion_id` ON `audit_records`(`promotion_id`);
CREATE INDEX IF NOT EXISTS `idx_audit_records_model` ON `audit_records`(`model`);

CREATE TABLE IF NOT EXISTS `retrains` (`event_id` text,`model` text,`target` text,`version` text,`reason` text,`sent_at` datetime,PRIMARY KEY (`event_id`));
CREATE INDEX IF NOT EXISTS `idx_retrain_pair` ON `retrains`(`model`,`target`);

CREATE TABLE IF NOT EXISTS `alert_notifications` (`key` text,`received_at` datetime,PRIMARY KEY (`key`));

CREATE TABLE IF NOT EXISTS `mcp_servers` (`name` text,`version` text,`doc` text,`created_at` datetime,PRIMARY KEY (`name`,`version`));

CREATE TABLE IF NOT EXISTS `mcp_channels` (`server` text,`channel` text,`version` text,`previous` text,`updated_at` datetime,PRIMARY KEY (`server`,`channel`));
