-- Version 3, unfinished: a database of version 1 as e3277fd (and the later
-- releases without versions) left it when stopped right after rebuilding
-- the documents table, in a transaction of its own: before the indexes of
-- its schema and the hashes were made.
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
CREATE TABLE documents_rebuilt (
	container TEXT NOT NULL,
	pk TEXT NOT NULL,
	id TEXT NOT NULL,
	body TEXT,
	etag TEXT NOT NULL,
	ts INTEGER NOT NULL,
	lsn INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	pk_hash INTEGER
);
INSERT INTO documents_rebuilt SELECT container, pk, id, body, etag, ts, lsn, deleted, NULL FROM documents;
DROP TABLE documents;
ALTER TABLE documents_rebuilt RENAME TO documents;
