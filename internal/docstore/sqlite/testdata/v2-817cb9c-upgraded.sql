-- Version 2: a database of version 1 as 817cb9c through 59e0c6b brought it up
-- to date (their migrate: the schema, which changed nothing, then the column).
CREATE TABLE IF NOT EXISTS containers (
	name TEXT PRIMARY KEY,
	partition_key_path TEXT NOT NULL,
	default_ttl_ms INTEGER NOT NULL DEFAULT 0,
	created TEXT NOT NULL,
	last_lsn INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS documents (
	container TEXT NOT NULL,
	pk TEXT NOT NULL,
	id TEXT NOT NULL,
	body TEXT,
	etag TEXT NOT NULL,
	ts INTEGER NOT NULL,
	lsn INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (container, pk, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON documents (container, lsn);
ALTER TABLE documents ADD COLUMN pk_hash INTEGER;
