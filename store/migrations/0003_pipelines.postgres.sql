-- Pipelines (stages of targets in waves) and the installation's switches (the freeze).
CREATE TABLE IF NOT EXISTS pipelines (
    name varchar(63) NOT NULL,
    team varchar(63),
    doc text,
    updated_at timestamptz,
    CONSTRAINT pipelines_pkey PRIMARY KEY (name)
);

CREATE TABLE IF NOT EXISTS settings (
    key varchar(63) NOT NULL,
    doc text,
    updated_at timestamptz,
    CONSTRAINT settings_pkey PRIMARY KEY (key)
);
