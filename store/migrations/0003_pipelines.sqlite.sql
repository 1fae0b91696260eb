-- Pipelines (stages of targets in waves) and the installation's switches (the freeze).
CREATE TABLE IF NOT EXISTS `pipelines` (`name` text,`team` text,`doc` text,`updated_at` datetime,PRIMARY KEY (`name`));
CREATE TABLE IF NOT EXISTS `settings` (`key` text,`doc` text,`updated_at` datetime,PRIMARY KEY (`key`));
