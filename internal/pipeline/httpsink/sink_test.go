package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

const (
	secretHeader = "Bearer s3cr3t-t0ken-value"
	querySecret  = "qu3ry-s3cret"
)

var bg = context.Background()

// receiver is an endpoint that applies each part once: it deduplicates by
// Idempotency-Key, as receivers are told to.
type receiver struct {
	t *testing.T
	// respond, when set, answers a request instead of 200: seen counts
	// the requests with this key so far, this one included.
	respond func(key string, seen int) (status int, header http.Header, body string)

	mu       sync.Mutex
	requests []request
	counts   map[string]int
	applied  map[string]bool
	changes  []pipeline.Change // applied, in order
}

type request struct {
	key    string
	header http.Header
	body   Body
	status int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b Body
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		rc.t.Errorf("receiver: decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")

	rc.mu.Lock()
	rc.counts[key]++
	status, header, text := http.StatusOK, http.Header{}, `{"ok":true}`
	if rc.respond != nil {
		if s, h, t := rc.respond(key, rc.counts[key]); s != 0 {
			status, header, text = s, h, t
		}
	}
	rc.requests = append(rc.requests, request{key: key, header: r.Header.Clone(), body: b, status: status})
	if status/100 == 2 && !rc.applied[key] {
		rc.applied[key] = true
		rc.changes = append(rc.changes, b.Changes...)
	}
	rc.mu.Unlock()

	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

func (rc *receiver) snapshot() ([]request, []pipeline.Change) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.requests...), append([]pipeline.Change(nil), rc.changes...)
}

// setup starts a receiver and a sink that POSTs to it, with a secret
// header and a secret in the URL's query. logs collects the sink's logs.
func setup(t *testing.T, cfg Config) (rc *receiver, s *Sink, logs *syncBuffer) {
	t.Helper()
	rc = &receiver{t: t, counts: map[string]int{}, applied: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle("/hook", rc)
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/hook?x=1", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere?token="+querySecret, http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	logs = &syncBuffer{}
	if cfg.URL == "" {
		cfg.URL = srv.URL + "/hook?token=" + querySecret
	} else {
		cfg.URL = srv.URL + cfg.URL
	}
	cfg.Pipeline = "orders"
	cfg.Destination = "webhook"
	cfg.Headers = map[string]string{"Authorization": secretHeader, "X-Team": "data"}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return rc, s, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func changeSet(seq int64) pipeline.ChangeSet {
	return pipeline.ChangeSet{Pipeline: "orders", Seq: seq, Position: fmt.Sprintf("0/%X", seq*1000)}
}

// makeChanges makes n changes of every op and kind of value, as decoding
// JSON gives them back (numbers as json.Number).
func makeChanges(n int) []pipeline.Change {
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	out := make([]pipeline.Change, n)
	for i := range out {
		id := json.Number(fmt.Sprint(i))
		key := pipeline.Row{"id": id}
		c := pipeline.Change{Table: "public.orders", Key: key, Position: fmt.Sprintf("0/%X", i),
			CommitTime: at.Add(time.Duration(i) * time.Second)}
		row := pipeline.Row{"id": id, "note": fmt.Sprintf("row %d, \"quoted\" <b>&", i), "paid": i%2 == 0,
			"amount": json.Number("12.50"), "gone": nil,
			"meta": map[string]any{"tags": []any{"a", json.Number("2")}, "n": nil}}
		switch i % 4 {
		case 0:
			c.Op, c.After = pipeline.Insert, row
		case 1:
			c.Op, c.After, c.Before = pipeline.Update, row, pipeline.Row{"id": id, "note": "old"}
		case 2:
			c.Op, c.Before = pipeline.Delete, row
			c.CommitTime = time.Time{}
		case 3:
			c.Op, c.After, c.Table = pipeline.Read, row, "public.items"
		}
		out[i] = c
	}
	return out
}

func TestChangeSetIsSentInPartsWithDeterministicKeys(t *testing.T) {
	t.Parallel()
	rc, s, _ := setup(t, Config{})
	changes := makeChanges(1201)

	rej, err := s.Apply(bg, changeSet(7), changes)
	require.NoError(t, err)
	require.Empty(t, rej)

	reqs, got := rc.snapshot()
	require.Len(t, reqs, 3)
	for i, want := range []int{500, 500, 201} {
		r := reqs[i]
		require.Equal(t, fmt.Sprintf("orders/webhook/7/%d", i), r.key)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, "orders", r.header.Get("Sluice-Pipeline"))
		require.Equal(t, "7", r.header.Get("Sluice-Change-Set"))
		require.Equal(t, secretHeader, r.header.Get("Authorization"))
		require.Equal(t, "data", r.header.Get("X-Team"))
		require.Equal(t, "sluice-httpsink", r.header.Get("User-Agent"))
		require.Equal(t, "orders", r.body.Pipeline)
		require.Equal(t, "webhook", r.body.Destination)
		require.Equal(t, int64(7), r.body.ChangeSet)
		require.Equal(t, i, r.body.Part)
		require.Equal(t, 3, r.body.Parts)
		require.Equal(t, "0/1B58", r.body.Position)
		require.Len(t, r.body.Changes, want)
	}
	require.Equal(t, changes, got, "the parts decode back to the changes, in order")
}

func TestBodyFieldNames(t *testing.T) {
	t.Parallel()
	rc, s, _ := setup(t, Config{})
	_, err := s.Apply(bg, changeSet(1), makeChanges(2))
	require.NoError(t, err)
	reqs, _ := rc.snapshot()
	require.Len(t, reqs, 1)
	raw, err := json.Marshal(reqs[0].body)
	require.NoError(t, err)
	var generic map[string]any
	require.NoError(t, json.Unmarshal(raw, &generic))
	for _, k := range []string{"pipeline", "destination", "change_set", "part", "parts", "position", "changes"} {
		require.Contains(t, generic, k)
	}
	first := generic["changes"].([]any)[1].(map[string]any)
	for _, k := range []string{"op", "table", "key", "after", "before", "position", "commit_time"} {
		require.Contains(t, first, k)
	}
}

func TestUnavailableThenResentWithSameKeys(t *testing.T) {
	t.Parallel()
	rc, s, logs := setup(t, Config{})
	rc.respond = func(key string, seen int) (int, http.Header, string) {
		if strings.HasSuffix(key, "/1") && seen == 1 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"7"}}, "busy, try later"
		}
		return 0, nil, ""
	}
	changes := makeChanges(1201)

	rej, err := s.Apply(bg, changeSet(3), changes)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Nil(t, rej)
	require.Contains(t, err.Error(), "HTTP 503")
	require.Contains(t, err.Error(), "Retry-After: 7")
	require.Contains(t, err.Error(), "busy, try later")
	require.Contains(t, err.Error(), "change set 3, part 2 of 3")
	require.NotContains(t, err.Error(), querySecret)
	_, got := rc.snapshot()
	require.Equal(t, changes[:500], got, "part 0 was taken before part 1 failed")

	rej, err = s.Apply(bg, changeSet(3), changes)
	require.NoError(t, err)
	require.Empty(t, rej)

	reqs, got := rc.snapshot()
	var keys []string
	for _, r := range reqs {
		keys = append(keys, r.key)
	}
	require.Equal(t, []string{
		"orders/webhook/3/0", "orders/webhook/3/1",
		"orders/webhook/3/0", "orders/webhook/3/1", "orders/webhook/3/2",
	}, keys)
	require.Equal(t, changes, got, "each change applied once, in order")
	require.NotContains(t, logs.String(), "t0ken")
}

func TestPartRefusedForGoodIsRejected(t *testing.T) {
	t.Parallel()
	rc, s, logs := setup(t, Config{})
	answer := `{"error":"amount, \"x\" is not a number"} ` + strings.Repeat("x", 300) + " " + secretHeader
	rc.respond = func(key string, _ int) (int, http.Header, string) {
		if strings.HasSuffix(key, "/1") {
			return http.StatusUnprocessableEntity, nil, answer
		}
		return 0, nil, ""
	}
	changes := makeChanges(1201)

	rej, err := s.Apply(bg, changeSet(4), changes)
	require.NoError(t, err)
	require.Len(t, rej, 500)
	reason := fmt.Sprintf("HTTP 422 from %s/hook: %s", strings.TrimSuffix(s.where, "/hook"), answer[:200])
	require.NotContains(t, reason, querySecret)
	for i, r := range rej {
		require.Equal(t, changes[500+i], r.Change)
		require.Equal(t, reason, r.Reason)
	}
	_, got := rc.snapshot()
	require.Equal(t, append(append([]pipeline.Change(nil), changes[:500]...), changes[1000:]...), got,
		"parts 0 and 2 delivered")
	require.Contains(t, logs.String(), "refused")
	require.NotContains(t, logs.String(), "t0ken")
	require.NotContains(t, logs.String(), querySecret)
}

func TestAnswerQuotedWithoutSecrets(t *testing.T) {
	t.Parallel()
	rc, s, _ := setup(t, Config{})
	rc.respond = func(string, int) (int, http.Header, string) {
		return http.StatusBadRequest, nil, "you sent Authorization: " + secretHeader + " and token s3cr3t-t0ken-value"
	}
	rej, err := s.Apply(bg, changeSet(1), makeChanges(1))
	require.NoError(t, err)
	require.Len(t, rej, 1)
	require.NotContains(t, rej[0].Reason, "t0ken")
	require.Contains(t, rej[0].Reason, "[redacted]")
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   error // nil: the changes are rejected
	}{
		{400, nil}, {413, nil}, {422, nil}, {410, nil},
		{401, ErrCredentials}, {403, ErrCredentials},
		{404, ErrNotFound},
		{408, ErrUnavailable}, {409, ErrUnavailable}, {425, ErrUnavailable}, {429, ErrUnavailable},
		{500, ErrUnavailable}, {502, ErrUnavailable}, {503, ErrUnavailable}, {504, ErrUnavailable},
		{204, nil}, {201, nil},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			rc, s, logs := setup(t, Config{})
			rc.respond = func(string, int) (int, http.Header, string) {
				return tc.status, nil, "answer with " + secretHeader
			}
			changes := makeChanges(3)
			rej, err := s.Apply(bg, changeSet(1), changes)
			switch {
			case tc.want != nil:
				require.ErrorIs(t, err, tc.want)
				require.Nil(t, rej)
				require.Contains(t, err.Error(), fmt.Sprintf("HTTP %d", tc.status))
				require.NotContains(t, err.Error(), "t0ken")
				require.NotContains(t, err.Error(), querySecret)
			case tc.status/100 == 2:
				require.NoError(t, err)
				require.Empty(t, rej)
			default:
				require.NoError(t, err)
				require.Len(t, rej, 3)
				for i, r := range rej {
					require.Equal(t, changes[i], r.Change)
					require.True(t, strings.HasPrefix(r.Reason, fmt.Sprintf("HTTP %d from http://", tc.status)), r.Reason)
				}
			}
			reqs, _ := rc.snapshot()
			require.Len(t, reqs, 1)
			require.NotContains(t, logs.String(), "t0ken")
		})
	}
}

func TestWrongCredentialsAreAnErrorWithoutTheSecret(t *testing.T) {
	t.Parallel()
	rc, s, logs := setup(t, Config{BatchSize: 2})
	rc.respond = func(string, int) (int, http.Header, string) {
		return http.StatusUnauthorized, nil, "bad token " + secretHeader
	}
	rej, err := s.Apply(bg, changeSet(5), makeChanges(5))
	require.ErrorIs(t, err, ErrCredentials)
	require.Nil(t, rej)
	require.Contains(t, err.Error(), "check the destination's credentials")
	require.NotContains(t, err.Error(), secretHeader)
	require.NotContains(t, err.Error(), "t0ken")
	require.NotContains(t, err.Error(), querySecret)
	require.NotContains(t, logs.String(), "t0ken")
	reqs, got := rc.snapshot()
	require.Len(t, reqs, 1, "stops at the first part")
	require.Empty(t, got)
}

func TestEmptyChangeSetSendsNothing(t *testing.T) {
	t.Parallel()
	rc, s, _ := setup(t, Config{})
	rej, err := s.Apply(bg, changeSet(1), nil)
	require.NoError(t, err)
	require.Nil(t, rej)
	reqs, _ := rc.snapshot()
	require.Empty(t, reqs)
}

func TestChangeSetOfAnotherPipelineIsRefused(t *testing.T) {
	t.Parallel()
	rc, s, _ := setup(t, Config{})
	cs := changeSet(1)
	cs.Pipeline = "other"
	_, err := s.Apply(bg, cs, makeChanges(1))
	require.ErrorIs(t, err, ErrPipeline)
	reqs, _ := rc.snapshot()
	require.Empty(t, reqs)
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	t.Run("307 is followed", func(t *testing.T) {
		t.Parallel()
		rc, s, _ := setup(t, Config{URL: "/old"})
		changes := makeChanges(3)
		rej, err := s.Apply(bg, changeSet(2), changes)
		require.NoError(t, err)
		require.Empty(t, rej)
		reqs, got := rc.snapshot()
		require.Len(t, reqs, 1)
		require.Equal(t, "orders/webhook/2/0", reqs[0].key)
		require.Equal(t, changes, got)
	})
	t.Run("302 is not", func(t *testing.T) {
		t.Parallel()
		rc, s, _ := setup(t, Config{URL: "/moved"})
		_, err := s.Apply(bg, changeSet(2), makeChanges(3))
		require.ErrorIs(t, err, ErrRedirect)
		require.Contains(t, err.Error(), "HTTP 302")
		require.Contains(t, err.Error(), "/elsewhere")
		require.NotContains(t, err.Error(), querySecret)
		reqs, _ := rc.snapshot()
		require.Empty(t, reqs)
	})
}

func TestNetworkErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook?token=" + querySecret
	srv.Close()
	s, err := New(Config{URL: url, Pipeline: "orders", Destination: "webhook"})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Apply(bg, changeSet(1), makeChanges(1))
	require.ErrorIs(t, err, ErrUnavailable)
	require.NotContains(t, err.Error(), querySecret)
}

// waitTransport answers no request: it waits for the request's context,
// and calls before first.
type waitTransport struct{ before func() }

func (w waitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if w.before != nil {
		w.before()
	}
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func TestTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{URL: "https://example.com/hook", Pipeline: "orders", Destination: "webhook",
			Client: &http.Client{Transport: waitTransport{}}})
		require.NoError(t, err)
		start := time.Now()
		_, err = s.Apply(bg, changeSet(1), makeChanges(1))
		require.ErrorIs(t, err, ErrUnavailable)
		require.Contains(t, err.Error(), "within 30s")
		require.Equal(t, 30*time.Second, time.Since(start), "the default timeout (synctest's clock)")
	})
}

func TestCallerCancelIsNotUnavailable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		s, err := New(Config{URL: "https://example.com/hook", Pipeline: "orders", Destination: "webhook",
			Client: &http.Client{Transport: waitTransport{before: cancel}}})
		require.NoError(t, err)
		_, err = s.Apply(ctx, changeSet(1), makeChanges(1))
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, errors.Is(err, ErrUnavailable))
	})
}
