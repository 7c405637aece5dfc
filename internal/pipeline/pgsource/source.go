package pgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Source reads a PostgreSQL database's changes to some tables through a
// logical replication slot. It is safe to call its methods from several
// goroutines, but only one Run of a pipeline may go on at a time.
type Source struct {
	cfg    Config
	tables []tableName
	// slot names the replication slot and the publication.
	slot string
	log  *slog.Logger
}

var _ pipeline.Source = (*Source)(nil)

// New checks cfg and returns a Source of it. It does not connect.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	tables, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	slot := slotName(cfg.Pipeline)
	return &Source{cfg: cfg, tables: tables, slot: slot, log: cfg.Logger.With("slot", slot)}, nil
}

// Slot is the name of the replication slot and of the publication.
func (s *Source) Slot() string { return s.slot }

// Run sets the database up (checks, the publication, the slot), takes a
// snapshot when after says none was completed, then streams changes
// until ctx ends (it returns ctx's error then) or something fails. See
// the package documentation.
func (s *Source) Run(ctx context.Context, after string, emit pipeline.Emit) error {
	pos, err := parsePosition(after)
	if err != nil {
		return err
	}
	r := &run{src: s, emit: emit}
	defer r.close(ctx)
	if r.conn, err = s.connect(ctx); err != nil {
		return err
	}
	if err := checkWALLevel(ctx, r.conn); err != nil {
		return err
	}
	if r.repl, err = s.connectReplication(ctx); err != nil {
		return err
	}
	r.types = &typeNames{conn: r.conn, connect: s.connect, cache: map[typeKey]string{}}
	if r.tables, err = describe(ctx, r.conn, s.tables, r.types); err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, r.conn, r.tables); err != nil {
		return err
	}

	var from, confirmed pglogrepl.LSN
	switch pos.kind {
	case posNone, posSnapshot:
		if pos.kind == posSnapshot {
			s.log.Info("pgsource: the last snapshot was cut short: taking it again", "after", after)
		}
		if err := s.dropSlot(ctx, r.conn); err != nil {
			return err
		}
		consistent, err := r.snapshot(ctx)
		if err != nil {
			return err
		}
		from, confirmed = consistent, consistent
	default:
		info, err := s.waitSlotIdle(ctx, r.conn)
		if err != nil {
			return err
		}
		var db string
		if err := r.conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
			return fmt.Errorf("pgsource: %w", err)
		}
		switch {
		case !info.exists:
			return fmt.Errorf("%w: %s does not exist, so the changes after %s cannot be read: start the pipeline over (an empty position) to take a new snapshot",
				ErrSlotLost, s.slot, after)
		case info.plugin != "pgoutput" || info.database != db:
			return fmt.Errorf("%w: slot %s is not a pgoutput slot of database %s (plugin %q, database %q): drop it, and start the pipeline over",
				ErrSlotLost, s.slot, db, info.plugin, info.database)
		}
		from = pos.streamFrom()
		// The slot may not have heard of the last batch staged (Run
		// ended between the two): confirming its commit LSN is safe, the
		// server sends that transaction again and it is skipped.
		confirmed = max(info.confirmed, pos.lsn)
	}
	r.types.conn = nil
	_ = r.conn.Close(ctx)
	r.conn = nil
	return r.stream(ctx, from, confirmed)
}

// run is the state of one Run.
type run struct {
	src    *Source
	emit   pipeline.Emit
	conn   *pgx.Conn      // ordinary connection: setup and snapshot
	repl   *pgconn.PgConn // replication connection: slot and stream
	tables []*tableInfo
	types  *typeNames
}

func (r *run) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if r.conn != nil {
		_ = r.conn.Close(cctx)
	}
	if r.repl != nil {
		_ = r.repl.Close(cctx)
	}
}

// Drop removes the replication slot and the publication of cfg's
// pipeline, if they exist, so that the server keeps no more WAL for it.
// It waits a while for a Run still streaming from the slot to stop.
func Drop(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := s.dropSlot(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{s.slot}.Sanitize()); err != nil {
		return fmt.Errorf("pgsource: drop publication %s: %w", s.slot, err)
	}
	return nil
}

// ErrNoSlot is returned by Lag when the pipeline's replication slot does
// not exist: the pipeline has not run yet, or it was dropped.
var ErrNoSlot = errors.New("pgsource: no replication slot")

// Lag is how far the slot is behind the server: the bytes of WAL the
// server keeps for it (from the position confirmed last to the server's
// current WAL position: a slot whose lag grows without end fills the
// server's disk), and, while the source is connected, the time between the
// server flushing WAL and the source confirming it (pg_stat_replication's
// flush_lag; 0 when caught up or not connected).
func (s *Source) Lag(ctx context.Context) (pipeline.SourceLag, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return pipeline.SourceLag{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var bytes *int64
	var secs *float64
	err = conn.QueryRow(ctx, `SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::int8,
	EXTRACT(EPOCH FROM r.flush_lag)::float8
FROM pg_catalog.pg_replication_slots s LEFT JOIN pg_catalog.pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1`, s.slot).Scan(&bytes, &secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.SourceLag{}, fmt.Errorf("%w: %s", ErrNoSlot, s.slot)
	}
	if err != nil {
		return pipeline.SourceLag{}, fmt.Errorf("pgsource: read the lag of slot %s: %w", s.slot, err)
	}
	var lag pipeline.SourceLag
	if bytes != nil {
		lag.Bytes = max(*bytes, 0)
	}
	if secs != nil {
		lag.Seconds = max(*secs, 0)
	}
	return lag, nil
}
