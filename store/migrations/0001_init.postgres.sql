-- The schema gorm's AutoMigrate built before versioned migrations, to the
-- letter (types, sizes, constraint and index names). Every statement is
-- guarded so that a database AutoMigrate created is adopted as it stands.

CREATE TABLE IF NOT EXISTS models (
    name varchar(63) NOT NULL,
    owner text,
    team text,
    risk_tier text,
    description text,
    data_domain text,
    tags text,
    created_at timestamptz,
    CONSTRAINT models_pkey PRIMARY KEY (name)
);
CREATE INDEX IF NOT EXISTS idx_models_team ON models (team);

CREATE TABLE IF NOT EXISTS versions (
    model varchar(63) NOT NULL,
    version varchar(63) NOT NULL,
    artifact_uri text,
    run_id text,
    source text,
    run_link text,
    registry varchar(32),
    registry_model text,
    registry_version varchar(63),
    metrics text,
    created_by text,
    created_at timestamptz,
    CONSTRAINT versions_pkey PRIMARY KEY (model, version)
);
-- Databases created before lineage import lack these columns.
ALTER TABLE versions ADD COLUMN IF NOT EXISTS run_link text;
ALTER TABLE versions ADD COLUMN IF NOT EXISTS registry varchar(32);
ALTER TABLE versions ADD COLUMN IF NOT EXISTS registry_model text;
ALTER TABLE versions ADD COLUMN IF NOT EXISTS registry_version varchar(63);

CREATE TABLE IF NOT EXISTS targets (
    name varchar(63) NOT NULL,
    doc text,
    created_at timestamptz,
    CONSTRAINT targets_pkey PRIMARY KEY (name)
);

CREATE TABLE IF NOT EXISTS promotions (
    id varchar(64) NOT NULL,
    model text,
    target text,
    status text,
    active_key text,
    idem_key text,
    requested_by text,
    seq bigint,
    doc text,
    created_at timestamptz,
    CONSTRAINT promotions_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_prom_model_target ON promotions (model, target);
CREATE INDEX IF NOT EXISTS idx_promotions_status ON promotions (status);
CREATE UNIQUE INDEX IF NOT EXISTS idx_promotions_active_key ON promotions (active_key);
CREATE UNIQUE INDEX IF NOT EXISTS idx_promotions_idem_key ON promotions (idem_key);
CREATE INDEX IF NOT EXISTS idx_promotions_created_at ON promotions (created_at);

CREATE TABLE IF NOT EXISTS deployments (
    model varchar(63) NOT NULL,
    target varchar(63) NOT NULL,
    doc text,
    CONSTRAINT deployments_pkey PRIMARY KEY (model, target)
);

CREATE TABLE IF NOT EXISTS audit_records (
    seq bigserial NOT NULL,
    key varchar(255),
    "time" timestamptz,
    actor text,
    action text,
    subject text,
    promotion_id text,
    model text,
    target text,
    decision text,
    details text,
    CONSTRAINT audit_records_pkey PRIMARY KEY (seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_audit_records_key ON audit_records (key);
CREATE INDEX IF NOT EXISTS idx_audit_records_actor ON audit_records (actor);
CREATE INDEX IF NOT EXISTS idx_audit_records_promotion_id ON audit_records (promotion_id);
CREATE INDEX IF NOT EXISTS idx_audit_records_model ON audit_records (model);

CREATE TABLE IF NOT EXISTS retrains (
    event_id varchar(255) NOT NULL,
    model text,
    target text,
    version text,
    reason text,
    sent_at timestamptz,
    CONSTRAINT retrains_pkey PRIMARY KEY (event_id)
);
CREATE INDEX IF NOT EXISTS idx_retrain_pair ON retrains (model, target);

CREATE TABLE IF NOT EXISTS alert_notifications (
    key varchar(255) NOT NULL,
    received_at timestamptz,
    CONSTRAINT alert_notifications_pkey PRIMARY KEY (key)
);

CREATE TABLE IF NOT EXISTS mcp_servers (
    name varchar(200) NOT NULL,
    version varchar(63) NOT NULL,
    doc text,
    created_at timestamptz,
    CONSTRAINT mcp_servers_pkey PRIMARY KEY (name, version)
);

CREATE TABLE IF NOT EXISTS mcp_channels (
    server varchar(200) NOT NULL,
    channel varchar(63) NOT NULL,
    version varchar(63),
    previous varchar(63),
    updated_at timestamptz,
    CONSTRAINT mcp_channels_pkey PRIMARY KEY (server, channel)
);
