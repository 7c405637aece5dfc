package sqlsink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// PositionsTable records, per pipeline and destination, the last change
// set applied.
const PositionsTable = "sluice_pipeline_positions"

var (
	// ErrNoTable: a change names a table the destination does not have,
	// and Config.CreateTables is false. Apply returns it (the change set
	// is tried again later) until the table is created.
	ErrNoTable = errors.New("sqlsink: destination table missing: create it, or set CreateTables")
	// ErrSchema: the destination's tables do not fit the changes (a column
	// is missing). Apply returns it until the table is changed.
	ErrSchema = errors.New("sqlsink: destination table does not fit")
	// ErrPipeline: Apply got a change set of another pipeline than
	// Config.Pipeline.
	ErrPipeline = errors.New("sqlsink: change set of another pipeline")
)

// Sink applies change sets to a PostgreSQL or MariaDB/MySQL database,
// each exactly once.
type Sink struct {
	cfg    Config
	d      dialect
	schema string

	mu     sync.Mutex
	tables map[string]*destTable // by destination name
	// rowReady: the positions row of (Pipeline, Destination) exists.
	rowReady bool

	// afterStatement, when set (by tests), runs after each statement that
	// writes rows.
	afterStatement func(ctx context.Context)
}

var _ pipeline.Sink = (*Sink)(nil)

// destTable is a destination table as its database describes it.
type destTable struct {
	name string
	// qname is the schema-qualified, quoted name.
	qname string
	// cols maps dialect.colKey(column) to the column.
	cols map[string]destColumn
}

type destColumn struct {
	name string
	typ  string // the type name as the database spells it
	// array: of an array type (PostgreSQL).
	array bool
}

// New connects to the destination and creates the positions table if
// missing.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	kind, _ := dialectOf(cfg.URL)
	var (
		d   dialect
		err error
	)
	switch kind {
	case postgresKind:
		d, err = openPostgres(ctx, cfg)
	case mysqlKind:
		d, err = openMySQL(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, d: d, schema: cfg.Schema, tables: map[string]*destTable{}}
	if s.schema == "" {
		if s.schema, err = d.currentSchema(ctx); err != nil {
			d.close()
			return nil, err
		}
	}
	if err := d.ddl(ctx, d.positionsDDL(s.qualified(PositionsTable))); err != nil {
		d.close()
		return nil, fmt.Errorf("sqlsink: create %s: %w", PositionsTable, err)
	}
	return s, nil
}

// Close closes the sink's connections.
func (s *Sink) Close() error {
	s.d.close()
	return nil
}

func (s *Sink) qualified(table string) string {
	return s.d.quote(s.schema) + "." + s.d.quote(table)
}

// Apply applies a change set in one transaction that takes the lock of
// the destination's position, skips the change set when the position is
// at or after it, writes its rows, and moves the position to it. See
// [pipeline.Sink].
//
// Upserts (Insert, Update, Read) of a table with the same columns that
// follow each other are written by one statement, the last change of each
// key winning; deletes that follow each other, by one statement. When the
// database refuses a row (a value it cannot take, a constraint), the
// change set is applied again row by row, and the rows it refuses are
// returned with its message.
func (s *Sink) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	if cs.Pipeline != s.cfg.Pipeline {
		return nil, fmt.Errorf("%w: %q, the sink's is %q", ErrPipeline, cs.Pipeline, s.cfg.Pipeline)
	}
	if cs.Seq < 1 {
		return nil, fmt.Errorf("sqlsink: change set seq %d: seqs count from 1", cs.Seq)
	}
	p, err := s.plan(ctx, cs, changes)
	if err != nil {
		return nil, s.failed(err)
	}
	rejected, err := s.run(ctx, cs, p, false)
	if err != nil && s.d.classify(err) >= redo {
		// A row's fault: redo with a savepoint per group, then per row.
		rejected, err = s.run(ctx, cs, p, true)
	}
	if err != nil {
		return nil, s.failed(err)
	}
	return rejected, nil
}

// failed forgets the tables' descriptions when an error may come from a
// change of the destination's tables.
func (s *Sink) failed(err error) error {
	if s.d.classify(err) == other {
		s.mu.Lock()
		clear(s.tables)
		s.mu.Unlock()
	}
	if s.d.missingTable(err) && !errors.Is(err, ErrNoTable) {
		// Dropped since the sink described it.
		return fmt.Errorf("%w: %w", ErrNoTable, err)
	}
	return err
}

// Reset moves the destination's recorded position back to seq, so that
// the change sets after seq are applied again (Apply skips change sets at
// or before the position): the pipeline calls it before replaying from
// change set n, as Reset(ctx, n-1) (App.ReplayPipeline does, through its
// resetter interface); Reset(ctx, 0) applies everything again. The
// position never moves forward: when it is before seq already, Reset
// leaves it.
func (s *Sink) Reset(ctx context.Context, seq int64) error {
	if seq < 0 {
		return fmt.Errorf("sqlsink: reset to seq %d: seqs count from 1 (0: before the first)", seq)
	}
	q := fmt.Sprintf("UPDATE %s SET %s = LEAST(%s, %s), %s = %s WHERE %s = %s AND %s = %s",
		s.qualified(PositionsTable), s.d.quote("seq"), s.d.quote("seq"), s.d.ph(1),
		s.d.quote("applied_at"), s.d.now(),
		s.d.quote("pipeline"), s.d.ph(2), s.d.quote("destination"), s.d.ph(3))
	if err := s.d.exec(ctx, q, seq, s.cfg.Pipeline, s.cfg.Destination); err != nil {
		return fmt.Errorf("sqlsink: reset %s/%s to seq %d: %w", s.cfg.Pipeline, s.cfg.Destination, seq, err)
	}
	return nil
}

// Position is the seq of the last change set applied to the destination
// (0 when none was).
func (s *Sink) Position(ctx context.Context) (int64, error) {
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s AND %s = %s",
		s.d.quote("seq"), s.qualified(PositionsTable),
		s.d.quote("pipeline"), s.d.ph(1), s.d.quote("destination"), s.d.ph(2))
	seq, _, err := s.d.queryInt(ctx, q, s.cfg.Pipeline, s.cfg.Destination)
	return seq, err
}

// run applies the plan in one transaction. careful: each group under a
// savepoint, and a group the database refuses row by row, refused rows
// rejected.
func (s *Sink) run(ctx context.Context, cs pipeline.ChangeSet, p *plan, careful bool) (rejected []pipeline.Rejected, err error) {
	for attempt := 0; ; attempt++ {
		rejected, again, err := s.runOnce(ctx, cs, p, careful)
		if !again || attempt > 0 {
			return rejected, err
		}
		// The positions row is missing: create it and start over.
		if err := s.ensureRow(ctx); err != nil {
			return nil, err
		}
	}
}

func (s *Sink) ensureRow(ctx context.Context) error {
	q := s.d.ensureRowSQL(s.qualified(PositionsTable))
	if err := s.d.exec(ctx, q, s.cfg.Pipeline, s.cfg.Destination); err != nil {
		return fmt.Errorf("sqlsink: create the position of %s/%s: %w", s.cfg.Pipeline, s.cfg.Destination, err)
	}
	s.mu.Lock()
	s.rowReady = true
	s.mu.Unlock()
	return nil
}

func (s *Sink) runOnce(ctx context.Context, cs pipeline.ChangeSet, p *plan, careful bool) (rejected []pipeline.Rejected, rowMissing bool, err error) {
	s.mu.Lock()
	ready := s.rowReady
	s.mu.Unlock()
	if !ready {
		if err := s.ensureRow(ctx); err != nil {
			return nil, false, err
		}
	}
	tx, err := s.d.begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("sqlsink: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// The caller's context may be over: roll back regardless,
			// within a bound.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = tx.rollback(rctx)
		}
	}()
	lock := fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s AND %s = %s FOR UPDATE",
		s.d.quote("seq"), s.qualified(PositionsTable),
		s.d.quote("pipeline"), s.d.ph(1), s.d.quote("destination"), s.d.ph(2))
	seq, found, err := tx.queryInt(ctx, lock, s.cfg.Pipeline, s.cfg.Destination)
	if err != nil {
		return nil, false, fmt.Errorf("sqlsink: lock the position of %s/%s: %w", s.cfg.Pipeline, s.cfg.Destination, err)
	}
	if !found {
		s.mu.Lock()
		s.rowReady = false
		s.mu.Unlock()
		return nil, true, nil
	}
	if cs.Seq <= seq {
		// Applied already (a crash or a replay without Reset).
		return nil, false, nil
	}
	rejected = append(rejected, p.rejected...)
	groups := p.merged
	if careful {
		groups = p.strict
	}
	for _, g := range groups {
		if !careful {
			if err := s.execGroup(ctx, tx, g, g.rows()); err != nil {
				return nil, false, err
			}
			continue
		}
		refused, err := s.execCarefully(ctx, tx, p, g)
		if err != nil {
			return nil, false, err
		}
		rejected = append(rejected, refused...)
	}
	record := fmt.Sprintf("UPDATE %s SET %s = %s, %s = %s, %s = %s WHERE %s = %s AND %s = %s",
		s.qualified(PositionsTable),
		s.d.quote("seq"), s.d.ph(1), s.d.quote("position"), s.d.ph(2), s.d.quote("applied_at"), s.d.now(),
		s.d.quote("pipeline"), s.d.ph(3), s.d.quote("destination"), s.d.ph(4))
	if err := tx.exec(ctx, record, cs.Seq, cs.Position, s.cfg.Pipeline, s.cfg.Destination); err != nil {
		return nil, false, fmt.Errorf("sqlsink: record position %d: %w", cs.Seq, err)
	}
	done = true
	if err := tx.commit(ctx); err != nil {
		return nil, false, fmt.Errorf("sqlsink: commit change set %d: %w", cs.Seq, err)
	}
	return rejected, false, nil
}

// execGroup writes rows of g, a statement per chunk.
func (s *Sink) execGroup(ctx context.Context, tx dbTx, g *group, rows []item) error {
	maxRows := min(s.cfg.MaxBatchRows, s.d.maxRows(len(g.cols)))
	for _, chunk := range chunks(rows, maxRows, s.cfg.MaxBatchBytes) {
		var q string
		var args []any
		if g.delete {
			q, args = s.d.delete(g, chunk)
		} else {
			q, args = s.d.upsert(g, chunk)
		}
		if err := tx.exec(ctx, q, args...); err != nil {
			verb := "upsert into"
			if g.delete {
				verb = "delete from"
			}
			return fmt.Errorf("sqlsink: %s %s (%d rows): %w", verb, g.t.name, len(chunk), err)
		}
		if s.afterStatement != nil {
			s.afterStatement(ctx)
		}
	}
	return nil
}

// execCarefully writes g under a savepoint and, when the database refuses
// a row of it, each change of g under a savepoint of its own, in order.
func (s *Sink) execCarefully(ctx context.Context, tx dbTx, p *plan, g *group) ([]pipeline.Rejected, error) {
	err := s.savepoint(ctx, tx, "sluice_group", func() error { return s.execGroup(ctx, tx, g, g.rows()) })
	if err == nil || s.d.classify(err) < redo {
		return nil, err
	}
	var rejected []pipeline.Rejected
	for _, it := range g.items {
		err := s.savepoint(ctx, tx, "sluice_row", func() error { return s.execGroup(ctx, tx, g, []item{it}) })
		if err == nil {
			continue
		}
		if s.d.classify(err) != rowFault {
			return nil, err
		}
		rejected = append(rejected, pipeline.Rejected{Change: p.changes[it.change], Reason: s.d.reason(err)})
	}
	return rejected, nil
}

func (s *Sink) savepoint(ctx context.Context, tx dbTx, name string, f func() error) error {
	if err := tx.exec(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	if err := f(); err != nil {
		if rerr := tx.exec(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return tx.exec(ctx, "RELEASE SAVEPOINT "+name)
}

// mapping describes how change c's table is written, describing the
// destination table and creating it when missing and allowed.
func (s *Sink) mapping(ctx context.Context, cs pipeline.ChangeSet, c pipeline.Change) (*mapping, error) {
	tc := s.cfg.Tables[c.Table]
	m := &mapping{source: c.Table, rename: tc.Rename, srcTypes: map[string]string{}}
	if len(tc.Columns) > 0 {
		m.keep = map[string]bool{}
		for _, col := range tc.Columns {
			m.keep[col] = true
		}
	}
	desc, described := cs.Tables[c.Table]
	if described {
		m.keys = desc.KeyColumns()
		for _, col := range desc.Columns {
			m.srcTypes[col.Name] = col.Type
		}
	}
	if len(m.keys) == 0 {
		for k := range c.Key {
			m.keys = append(m.keys, k)
		}
		slices.Sort(m.keys)
	}
	name := s.cfg.destTable(c.Table)
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("%w: table %s: %v: name it with Tables[%q].Name", ErrSchema, c.Table, err, c.Table)
	}
	s.mu.Lock()
	t := s.tables[name]
	s.mu.Unlock()
	if t != nil {
		m.t = t
		return m, nil
	}
	t, err := s.describe(ctx, name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		if !s.cfg.CreateTables {
			return nil, fmt.Errorf("%w: %s (for source table %s)", ErrNoTable, s.qualified(name), c.Table)
		}
		if err := s.create(ctx, name, m, desc, c); err != nil {
			return nil, err
		}
		if t, err = s.describe(ctx, name); err != nil {
			return nil, err
		}
		if t == nil {
			return nil, fmt.Errorf("%w: %s was created but cannot be found", ErrNoTable, s.qualified(name))
		}
	}
	s.mu.Lock()
	s.tables[name] = t
	s.mu.Unlock()
	m.t = t
	return m, nil
}

func (s *Sink) describe(ctx context.Context, name string) (*destTable, error) {
	cols, err := s.d.describe(ctx, s.schema, name)
	if err != nil {
		return nil, fmt.Errorf("sqlsink: describe %s: %w", s.qualified(name), err)
	}
	if len(cols) == 0 {
		return nil, nil
	}
	t := &destTable{name: name, qname: s.qualified(name), cols: map[string]destColumn{}}
	for _, c := range cols {
		t.cols[s.d.colKey(c.name)] = c
	}
	return t, nil
}

// create creates destination table name from the source's description,
// or, when the change set has none, from change c's columns (as text).
func (s *Sink) create(ctx context.Context, name string, m *mapping, desc pipeline.Table, c pipeline.Change) error {
	var cols []pipeline.Column
	if len(desc.Columns) > 0 {
		cols = desc.Columns
	} else {
		seen := map[string]bool{}
		for _, k := range m.keys {
			cols = append(cols, pipeline.Column{Name: k, Type: "text", Key: true})
			seen[k] = true
		}
		var rest []string
		for col := range c.After {
			if !seen[col] {
				rest = append(rest, col)
			}
		}
		slices.Sort(rest)
		for _, col := range rest {
			cols = append(cols, pipeline.Column{Name: col, Type: "text"})
		}
	}
	var defs []columnDef
	var keys []string
	for _, col := range cols {
		isKey := slices.Contains(m.keys, col.Name)
		if m.keep != nil && !m.keep[col.Name] && !isKey {
			continue
		}
		dest := m.destName(col.Name)
		if err := checkName(dest); err != nil {
			return fmt.Errorf("%w: column %s of %s: %v: rename it with Tables[%q].Rename", ErrSchema, col.Name, m.source, err, m.source)
		}
		defs = append(defs, columnDef{name: dest, typ: s.d.columnType(col.Type, isKey), key: isKey})
	}
	for _, k := range m.keys {
		keys = append(keys, m.destName(k))
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: cannot create %s: source table %s has no key columns", ErrSchema, s.qualified(name), m.source)
	}
	q := s.d.createTable(s.qualified(name), defs, keys)
	if err := s.d.ddl(ctx, q); err != nil {
		return fmt.Errorf("sqlsink: create %s: %w", s.qualified(name), err)
	}
	return nil
}

type columnDef struct {
	name, typ string
	key       bool
}
