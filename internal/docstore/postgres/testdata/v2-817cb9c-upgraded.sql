-- Version 2: a schema of version 1 as 817cb9c and the later releases without
-- versions brought it up to date (their Open ran their schema on it).
-- {s} stands for the schema.
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.containers (
	name text PRIMARY KEY,
	partition_key_path text NOT NULL,
	default_ttl_ms bigint NOT NULL DEFAULT 0,
	created timestamptz NOT NULL DEFAULT now(),
	last_lsn bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.documents (
	container text NOT NULL,
	pk text NOT NULL,
	id text NOT NULL,
	body jsonb,
	etag text NOT NULL,
	ts timestamptz NOT NULL,
	lsn bigint NOT NULL,
	deleted boolean NOT NULL DEFAULT false,
	PRIMARY KEY (container, pk, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON {s}.documents (container, lsn);
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.containers (
	name text PRIMARY KEY,
	partition_key_path text NOT NULL,
	default_ttl_ms bigint NOT NULL DEFAULT 0,
	created timestamptz NOT NULL DEFAULT now(),
	last_lsn bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.documents (
	container text NOT NULL,
	pk text NOT NULL,
	id text NOT NULL,
	body jsonb,
	etag text NOT NULL,
	ts timestamptz NOT NULL,
	lsn bigint NOT NULL,
	deleted boolean NOT NULL DEFAULT false,
	pk_hash bigint,
	PRIMARY KEY (container, pk, id)
);
ALTER TABLE {s}.documents ADD COLUMN IF NOT EXISTS pk_hash bigint;
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON {s}.documents (container, lsn);
