-- Version 1: the schema of fa89668 (the first release) through 7fb85e7, as
-- their Open created it.
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
