package pgsource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// SQLSTATE codes the setup tells apart.
const (
	codeInsufficientPrivilege = "42501"
)

// connect opens an ordinary connection.
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgsource: %w", err)
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = s.slot
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("pgsource: connect to %s: %w", cc.Host, err)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection
// (replication=database) to the database.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cc, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgsource: %w", err)
	}
	cc.RuntimeParams["replication"] = "database"
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = s.slot
	}
	conn, err := pgconn.ConnectConfig(ctx, cc)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeInsufficientPrivilege {
			return nil, fmt.Errorf("%w: role %s may not open a replication connection (%s); as a superuser run: ALTER ROLE %s WITH REPLICATION;",
				ErrNoReplicationRight, cc.User, pgErr.Message, quoteIdent(cc.User))
		}
		return nil, fmt.Errorf("pgsource: open a replication connection to %s: %w", cc.Host, err)
	}
	return conn, nil
}

// quoteIdent quotes an identifier for SQL when it needs quotes.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return pgx.Identifier{s}.Sanitize()
}

func checkWALLevel(ctx context.Context, conn *pgx.Conn) error {
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("pgsource: read wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w: it is %q; as a superuser run: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL "+
			"(on a managed service set its parameter instead: rds.logical_replication = 1 on Amazon RDS, cloudsql.logical_decoding = on on Cloud SQL)",
			ErrNotLogical, level)
	}
	return nil
}

// tableInfo is what the catalog says of a configured table.
type tableInfo struct {
	name tableName
	// identity is pg_class.relreplident: 'd' default (the primary key),
	// 'i' an index, 'f' full.
	identity byte
	// key names the key columns: the primary key's, or the replica
	// identity index's, or, for a table of REPLICA IDENTITY FULL without
	// a primary key, every column.
	key []string
	// indexed: key is an index's (the rows can be read in its order).
	indexed bool
	// desc describes the columns (generated ones left out: pgoutput does
	// not send them).
	desc pipeline.Table
}

// describe reads the catalog's description of each table, checking that
// it exists and that its changes say which row they change.
func describe(ctx context.Context, conn *pgx.Conn, names []tableName, types *typeNames) ([]*tableInfo, error) {
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return nil, fmt.Errorf("pgsource: %w", err)
	}
	out := make([]*tableInfo, 0, len(names))
	for _, name := range names {
		var (
			oid            uint32
			kind, identity byte
		)
		err := conn.QueryRow(ctx, `SELECT c.oid, c.relkind, c.relreplident
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2`, name.schema, name.name).Scan(&oid, &kind, &identity)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: %s does not exist in database %s: create it, or correct Tables (names are case-sensitive; write schema.table, or table for public.table)",
				ErrTableNotFound, name, db)
		}
		if err != nil {
			return nil, fmt.Errorf("pgsource: look up table %s: %w", name, err)
		}
		switch kind {
		case 'r':
		case 'p':
			return nil, fmt.Errorf("%w: %s is a partitioned table, which this source does not read yet: name its partitions in Tables instead", ErrTableNotFound, name)
		default:
			return nil, fmt.Errorf("%w: %s is a %s, not a table: only tables have changes to read", ErrTableNotFound, name, relkindName(kind))
		}
		t := &tableInfo{name: name, identity: identity, desc: pipeline.Table{Name: name.String()}}

		cols, err := readColumns(ctx, conn, oid)
		if err != nil {
			return nil, fmt.Errorf("pgsource: read the columns of %s: %w", name, err)
		}
		pk, idxKey, err := readKeys(ctx, conn, oid)
		if err != nil {
			return nil, fmt.Errorf("pgsource: read the key of %s: %w", name, err)
		}
		t.indexed = true
		switch {
		case identity == 'f' && len(pk) > 0:
			t.key = pk
		case identity == 'f':
			t.indexed = false
			for _, c := range cols {
				t.key = append(t.key, c.name)
			}
		case identity == 'i' && len(idxKey) > 0:
			t.key = idxKey
		case identity == 'd' && len(pk) > 0:
			t.key = pk
		default:
			why, fix := "has no primary key", "add a primary key: ALTER TABLE %s ADD PRIMARY KEY (<columns>);"
			switch identity {
			case 'n':
				why, fix = "has REPLICA IDENTITY NOTHING", "with a primary key, use it: ALTER TABLE %s REPLICA IDENTITY DEFAULT;"
			case 'i':
				why, fix = "has REPLICA IDENTITY USING INDEX of an index that is gone", "use another: ALTER TABLE %s REPLICA IDENTITY USING INDEX <unique index>;"
			}
			return nil, fmt.Errorf("%w: %s %s, so its updates and deletes do not say which row they change; %s "+
				"or have PostgreSQL log whole old rows: ALTER TABLE %s REPLICA IDENTITY FULL;",
				ErrNoPrimaryKey, name, why, fmt.Sprintf(fix, name.sql()), name.sql())
		}
		for _, c := range cols {
			typ, err := types.name(ctx, c.oid, c.mod)
			if err != nil {
				return nil, err
			}
			t.desc.Columns = append(t.desc.Columns, pipeline.Column{Name: c.name, Type: typ, Key: slices.Contains(t.key, c.name)})
		}
		out = append(out, t)
	}
	return out, nil
}

type column struct {
	name string
	oid  uint32
	mod  int32
}

// readColumns reads the columns of table oid that pgoutput sends.
func readColumns(ctx context.Context, conn *pgx.Conn, oid uint32) ([]column, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.name, &c.oid, &c.mod)
		return c, err
	})
}

// readKeys reads the columns of table oid's primary key and of its
// replica identity index (USING INDEX), in index order.
func readKeys(ctx context.Context, conn *pgx.Conn, oid uint32) (pk, identity []string, err error) {
	rows, err := conn.Query(ctx, `SELECT a.attname, i.indisprimary, i.indisreplident FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND (i.indisprimary OR i.indisreplident)
ORDER BY i.indexrelid, k.ord`, oid)
	if err != nil {
		return nil, nil, err
	}
	var (
		name               string
		primary, replident bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &primary, &replident}, func() error {
		if primary {
			pk = append(pk, name)
		}
		if replident {
			identity = append(identity, name)
		}
		return nil
	})
	return pk, identity, err
}

func relkindName(kind byte) string {
	switch kind {
	case 'v':
		return "view"
	case 'm':
		return "materialized view"
	case 'f':
		return "foreign table"
	case 'S':
		return "sequence"
	case 'i', 'I':
		return "index"
	case 'c':
		return "composite type"
	}
	return fmt.Sprintf("relation of kind %q", kind)
}

// ensurePublication creates the pipeline's publication for the tables,
// or makes an existing one publish them and only them.
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn, tables []*tableInfo) error {
	pub := pgx.Identifier{s.slot}.Sanitize()
	list := make([]string, len(tables))
	want := make([]string, len(tables))
	for i, t := range tables {
		list[i] = "ONLY " + t.name.sql()
		want[i] = t.name.String()
	}
	slices.Sort(want)
	hint := func(err error, what string) error {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeInsufficientPrivilege {
			return fmt.Errorf("pgsource: %s publication %s: %w; run it as the tables' owner or a superuser: CREATE PUBLICATION %s FOR TABLE %s;",
				what, s.slot, err, pub, strings.Join(list, ", "))
		}
		return fmt.Errorf("pgsource: %s publication %s: %w", what, s.slot, err)
	}

	var allTables, publishesAll bool
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert AND pubupdate AND pubdelete FROM pg_catalog.pg_publication WHERE pubname = $1`,
		s.slot).Scan(&allTables, &publishesAll)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION "+pub+" FOR TABLE "+strings.Join(list, ", ")); err != nil {
			return hint(err, "create")
		}
		s.log.Info("pgsource: created the publication", "publication", s.slot, "tables", want)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgsource: read publication %s: %w", s.slot, err)
	}
	if !publishesAll {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pub+" SET (publish = 'insert, update, delete, truncate')"); err != nil {
			return hint(err, "alter")
		}
	}
	if allTables {
		// Changes of the other tables are skipped as they come.
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1`, s.slot)
	if err != nil {
		return fmt.Errorf("pgsource: read publication %s: %w", s.slot, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("pgsource: read publication %s: %w", s.slot, err)
	}
	slices.Sort(have)
	if slices.Equal(have, want) {
		return nil
	}
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pub+" SET TABLE "+strings.Join(list, ", ")); err != nil {
		return hint(err, "alter")
	}
	s.log.Info("pgsource: changed the tables of the publication", "publication", s.slot, "was", have, "tables", want)
	return nil
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	exists    bool
	plugin    string
	database  string
	confirmed pglogrepl.LSN
	activePID int32 // 0 when no connection streams from it
}

func (s *Source) readSlot(ctx context.Context, conn *pgx.Conn) (slotInfo, error) {
	var (
		info                        slotInfo
		plugin, database, confirmed *string
		pid                         *int32
	)
	err := conn.QueryRow(ctx, `SELECT plugin, database, confirmed_flush_lsn::text, active_pid
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.slot).Scan(&plugin, &database, &confirmed, &pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return info, nil
	}
	if err != nil {
		return info, fmt.Errorf("pgsource: read replication slot %s: %w", s.slot, err)
	}
	info.exists = true
	if plugin != nil {
		info.plugin = *plugin
	}
	if database != nil {
		info.database = *database
	}
	if confirmed != nil {
		if info.confirmed, err = parseLSN(*confirmed); err != nil {
			return info, fmt.Errorf("pgsource: replication slot %s: %w", s.slot, err)
		}
	}
	if pid != nil {
		info.activePID = *pid
	}
	return info, nil
}

// slotBusyWait is how long Run and Drop wait for another connection to
// stop streaming from the slot. The usual one is the walsender of a Run
// that just returned: it exits a moment after its connection closed.
const slotBusyWait = 30 * time.Second

// waitSlotIdle waits until no connection streams from the slot (or it does
// not exist) and returns it.
func (s *Source) waitSlotIdle(ctx context.Context, conn *pgx.Conn) (slotInfo, error) {
	deadline := time.Now().Add(slotBusyWait)
	pause := 10 * time.Millisecond
	for {
		info, err := s.readSlot(ctx, conn)
		if err != nil || !info.exists || info.activePID == 0 {
			return info, err
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("%w: process %d has streamed from %s for more than %s: is the pipeline running elsewhere?",
				ErrSlotInUse, info.activePID, s.slot, slotBusyWait)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return info, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// dropSlot drops the slot if it exists.
func (s *Source) dropSlot(ctx context.Context, conn *pgx.Conn) error {
	info, err := s.waitSlotIdle(ctx, conn)
	if err != nil || !info.exists {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", s.slot); err != nil {
		return fmt.Errorf("pgsource: drop replication slot %s: %w", s.slot, err)
	}
	s.log.Info("pgsource: dropped the replication slot")
	return nil
}

// typeNames names column types as Column.Type does ("int8",
// "varchar(40)", "numeric(10,2)", "text[]"), from the catalog, once per
// type and modifier.
type typeNames struct {
	// conn serves the lookups while it is set (during setup); without it
	// a lookup opens a connection of its own (a type first seen in the
	// stream, after a schema change).
	conn    *pgx.Conn
	connect func(context.Context) (*pgx.Conn, error)
	cache   map[typeKey]string
}

type typeKey struct {
	oid uint32
	mod int32
}

const typeNameSQL = `SELECT CASE WHEN t.typcategory = 'A' AND e.oid IS NOT NULL THEN e.typname ELSE t.typname END
	|| coalesce(substring(pg_catalog.format_type(t.oid, $2::int4) from '\([^)]*\)'), '')
	|| CASE WHEN t.typcategory = 'A' AND e.oid IS NOT NULL THEN '[]' ELSE '' END
FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
WHERE t.oid = $1`

func (tn *typeNames) name(ctx context.Context, oid uint32, mod int32) (string, error) {
	k := typeKey{oid, mod}
	if name, ok := tn.cache[k]; ok {
		return name, nil
	}
	conn := tn.conn
	if conn == nil {
		c, err := tn.connect(ctx)
		if err != nil {
			return "", err
		}
		defer c.Close(context.WithoutCancel(ctx))
		conn = c
	}
	var name string
	err := conn.QueryRow(ctx, typeNameSQL, oid, mod).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		// A type dropped since: name it by number.
		name = fmt.Sprintf("oid:%d", oid)
	} else if err != nil {
		return "", fmt.Errorf("pgsource: name type %d: %w", oid, err)
	}
	tn.cache[k] = name
	return name, nil
}
