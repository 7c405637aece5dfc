package bench

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
	xrate "golang.org/x/time/rate"
)

// cdcLoad is what the writers of a phase write.
type cdcLoad struct {
	// phase numbers the phase: its rows' ids are its own.
	phase int
	// changes is the number of row changes to write, over all writers.
	changes int64
	// rate limits the writers to this many changes per second; 0: flat
	// out.
	rate float64
}

// cdcIDBase is the first id of writer w in a phase: each writer inserts,
// updates and deletes ids of its own, so writers never wait for each
// other's locks.
func cdcIDBase(phase, w int) int64 { return int64(phase)*1_000_000_000_000 + int64(w)*10_000_000_000 }

// cdcStatuses are the values of the status column.
var cdcStatuses = []string{"new", "paid", "packed", "shipped", "delivered", "returned"}

// cdcPad is text that the rows' notes are cut from, so that a row is
// about 200 bytes.
var cdcPad = strings.Repeat("the quick brown fox jumps over the lazy dog, 0123456789; ", 6)

const cdcNoteLen = 150

// writeCDC runs o.Writers writers until they changed l.changes rows in
// all: statements of o.RowsPerStatement rows, about 60% inserts, 30%
// updates and 10% deletes of rows that exist, each statement a
// transaction of its own. written counts the changes committed.
func writeCDC(ctx context.Context, pool *pgxpool.Pool, o CDCOptions, l cdcLoad, written *atomic.Int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var limiter *xrate.Limiter
	if l.rate > 0 {
		limiter = xrate.NewLimiter(xrate.Limit(l.rate), o.RowsPerStatement)
	}
	var wg sync.WaitGroup
	for w := range o.Writers {
		quota := l.changes / int64(o.Writers)
		if int64(w) < l.changes%int64(o.Writers) {
			quota++
		}
		wg.Go(func() {
			cw := &cdcWriter{pool: pool, next: cdcIDBase(l.phase, w), rows: o.RowsPerStatement, limiter: limiter,
				rng: mrand.New(mrand.NewPCG(uint64(l.phase), uint64(w)))}
			if err := cw.run(ctx, quota, written); err != nil {
				cancel(fmt.Errorf("writer %d: %w", w, err))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// cdcWriter writes the rows of its id range.
type cdcWriter struct {
	pool    *pgxpool.Pool
	rng     *mrand.Rand
	limiter *xrate.Limiter
	rows    int
	next    int64   // the next id to insert
	live    []int64 // the ids it inserted and did not delete
}

func (cw *cdcWriter) run(ctx context.Context, quota int64, written *atomic.Int64) error {
	for done := int64(0); done < quota; {
		n := int(min(int64(cw.rows), quota-done))
		if cw.limiter != nil {
			if err := cw.limiter.WaitN(ctx, n); err != nil {
				return err
			}
		}
		var q string
		var args []any
		switch op := cw.rng.IntN(10); {
		case op >= 6 && len(cw.live) >= n:
			// Update or delete n consecutive rows of the live ones.
			i := cw.rng.IntN(len(cw.live) - n + 1)
			ids := append([]int64(nil), cw.live[i:i+n]...)
			if op == 9 {
				q, args = "DELETE FROM orders WHERE id = ANY($1)", []any{ids}
				cw.live = append(cw.live[:i], cw.live[i+n:]...)
			} else {
				q = "UPDATE orders SET status = $2, amount = amount + 1, note = $3, written_at = clock_timestamp() WHERE id = ANY($1)"
				args = []any{ids, cdcStatuses[cw.rng.IntN(len(cdcStatuses))], cw.note()}
			}
		default:
			q, args = cw.insert(n)
		}
		tag, err := cw.pool.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("%q changed %d rows, not %d", q[:strings.IndexByte(q, ' ')], tag.RowsAffected(), n)
		}
		done += int64(n)
		written.Add(int64(n))
	}
	return nil
}

// insert is a multi-row INSERT of n new rows.
func (cw *cdcWriter) insert(n int) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO orders (id, customer, status, amount, note) VALUES ")
	args := make([]any, 0, 5*n)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 5 * i
		b.WriteString("($" + strconv.Itoa(p+1) + ", $" + strconv.Itoa(p+2) + ", $" + strconv.Itoa(p+3) + ", $" + strconv.Itoa(p+4) + ", $" + strconv.Itoa(p+5) + ")")
		cents := cw.rng.IntN(1_000_000)
		args = append(args, cw.next, fmt.Sprintf("customer-%05d", cw.rng.IntN(100_000)), cdcStatuses[0],
			fmt.Sprintf("%d.%02d", cents/100, cents%100), cw.note())
		cw.live = append(cw.live, cw.next)
		cw.next++
	}
	return b.String(), args
}

func (cw *cdcWriter) note() string {
	i := cw.rng.IntN(len(cdcPad) - cdcNoteLen)
	return cdcPad[i : i+cdcNoteLen]
}
