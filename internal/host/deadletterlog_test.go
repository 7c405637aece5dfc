package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// logLines collects the records of a JSON log handler.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns the records written since the last call.
func (l *logLines) take(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(&l.buf)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		out = append(out, rec)
	}
	l.buf.Reset()
	return out
}

func hubLetter(seq int64, reason string) DeadLetter {
	return DeadLetter{Function: "f", Reason: reason, Attempts: 3,
		Source: Source{Kind: "hub", Hub: "orders", Group: "$Default", Partition: 2, Sequence: seq}}
}

func TestDeadLetterLogSumsUpEachFunctionPerInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		lines := &logLines{}
		l := newDeadLetterLog(slog.New(slog.NewJSONHandler(lines, nil)), 10*time.Second)

		// The first dead letter of a quiet function is logged at once.
		l.add("f", []DeadLetter{hubLetter(1, "bad frame")})
		got := lines.take(t)
		require.Len(t, got, 1)
		require.Equal(t, "WARN", got[0]["level"])
		require.Equal(t, "inputs dead-lettered", got[0]["msg"])
		require.Equal(t, "f", got[0]["function"])
		require.Equal(t, 1.0, got[0]["count"])
		require.Equal(t, "bad frame: 1", got[0]["reasons"])
		require.Equal(t, map[string]any{"source": "hub", "hub": "orders", "group": "$Default", "partition": 2.0, "sequence": 1.0,
			"reason": "bad frame", "attempts": 3.0}, got[0]["sample"])

		// The next ones are counted, not logged, until the interval ends.
		reasons := []string{"bad frame", "downstream says no", "bad frame"}
		for i := range 1000 {
			l.add("f", []DeadLetter{hubLetter(int64(i+2), reasons[i%3])})
		}
		// Another function has its own interval, and its first line.
		l.add("g", []DeadLetter{{Function: "g", Reason: "poison", Attempts: 5, Source: Source{Kind: "queue", Queue: "jobs", MessageID: 7}}})
		got = lines.take(t)
		require.Len(t, got, 1, "f's dead letters wait for the summary; g's first is logged at once")
		require.Equal(t, "g", got[0]["function"])
		require.Equal(t, map[string]any{"source": "queue", "queue": "jobs", "message_id": 7.0, "reason": "poison", "attempts": 5.0}, got[0]["sample"])

		time.Sleep(10 * time.Second)
		synctest.Wait()
		got = lines.take(t)
		require.Len(t, got, 1, "one summary line for f; g had nothing more")
		require.Equal(t, "f", got[0]["function"])
		require.Equal(t, 1000.0, got[0]["count"])
		require.Equal(t, "bad frame: 667; downstream says no: 333", got[0]["reasons"])
		require.Equal(t, 2.0, got[0]["sample"].(map[string]any)["sequence"], "the interval's first dead letter")
		require.Contains(t, got[0]["when"], "10s")

		// An interval without dead letters makes f quiet again: its next
		// one is logged at once.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Empty(t, lines.take(t))
		l.add("f", []DeadLetter{hubLetter(5000, "bad frame")})
		got = lines.take(t)
		require.Len(t, got, 1)
		require.Equal(t, 5000.0, got[0]["sample"].(map[string]any)["sequence"])

		// Stopping writes what the interval under way has counted.
		l.add("f", []DeadLetter{hubLetter(5001, "late"), hubLetter(5002, "late")})
		require.Empty(t, lines.take(t))
		l.stop()
		got = lines.take(t)
		require.Len(t, got, 1)
		require.Equal(t, 2.0, got[0]["count"])
		require.Equal(t, "late: 2", got[0]["reasons"])
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, lines.take(t), "no timer is left")
	})
}

func TestDeadLetterLogBoundsTheReasons(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		lines := &logLines{}
		l := newDeadLetterLog(slog.New(slog.NewJSONHandler(lines, nil)), time.Second)
		l.add("f", []DeadLetter{hubLetter(0, strings.Repeat("x", 5000))})
		got := lines.take(t)
		require.Len(t, got, 1)
		require.LessOrEqual(t, len(got[0]["reasons"].(string)), maxReasonBytes+20, "a long reason is cut")
		for i := range 100 {
			l.add("f", []DeadLetter{hubLetter(int64(i), fmt.Sprintf("reason %02d", i%50))})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got = lines.take(t)
		require.Len(t, got, 1)
		require.Equal(t, 100.0, got[0]["count"])
		require.Equal(t, "(other reasons): 60; reason 00: 2; reason 01: 2; reason 02: 2; reason 03: 2; 16 more reasons: 32", got[0]["reasons"])
		l.stop()
	})
}
