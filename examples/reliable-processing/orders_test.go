package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGeneratorMakesCorruptEventsAtTheirShare(t *testing.T) {
	t.Parallel()
	g := newGenerator(5, 0.05)
	seqs := map[string]int{}
	for _, e := range g.batch(1200) {
		o, err := decodeOrder(e.Body)
		if err != nil {
			assert.False(t, json.Valid(e.Body), "%s", e.Body)
			continue
		}
		assert.Equal(t, o.Customer, e.PartitionKey)
		assert.Equal(t, seqs[o.Customer]+1, o.Seq, "each customer's orders are numbered 1, 2, 3…")
		seqs[o.Customer] = o.Seq
	}
	assert.Equal(t, 60, g.Corrupt)
	assert.Equal(t, 1140, g.Orders)
	assert.False(t, isCorrupt(0, 0))
}

func TestDecodeOrder(t *testing.T) {
	t.Parallel()
	_, err := decodeOrder([]byte(`{"id":"p-c01-1","producer":"p","customer":"c01","seq":1,"amount_cents":5}`))
	require.NoError(t, err)
	for body, want := range map[string]string{
		`{"id":"p-c01-?","producer":"p","customer":"c01","amount_cents":`:   "not a JSON order: unexpected EOF",
		`{"id":"x","producer":"p","customer":"c01","seq":1,"colour":"red"}`: `not a JSON order: json: unknown field "colour"`,
		`{"id":"x","producer":"p","customer":"c01","seq":1} {}`:             "not a JSON order: data after the object",
		`{"id":"x","producer":"p","customer":"c01","seq":0}`:                "not an order: id, producer, customer and seq (from 1) are required",
		`not json`: "not a JSON order: invalid character 'o' in literal null (expecting 'u')",
	} {
		_, err := decodeOrder([]byte(body))
		assert.EqualError(t, err, want, body)
	}
}

func TestDownstreamCountsDuplicatesAndGaps(t *testing.T) {
	t.Parallel()
	d := &downstream{log: slog.New(slog.DiscardHandler), ids: map[string]bool{}, last: map[string]int{}, downAfter: 4}
	srv := httptest.NewServer(d.handler())
	t.Cleanup(srv.Close)
	post := func(seq string) int {
		resp, err := http.Post(srv.URL+"/orders", "application/json",
			strings.NewReader(`{"id":"p-c01-`+seq+`","producer":"p","customer":"c01","seq":`+seq+`}`))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post("1"))
	assert.Equal(t, http.StatusNoContent, post("2"))
	assert.Equal(t, http.StatusNoContent, post("2")) // a duplicate
	assert.Equal(t, http.StatusNoContent, post("4")) // a gap; the fourth order takes it down
	assert.Equal(t, http.StatusServiceUnavailable, post("5"))
	resp, err := http.Post(srv.URL+"/up", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, post("5"))
	s := d.snapshot()
	assert.Equal(t, downstreamStatus{Up: true, Orders: 4, Duplicates: 1, OutOfOrder: 1, Refused: 1, Streams: 1,
		Problems: []string{"duplicate: p-c01-2 again (last of p/c01 was 2)", "out of order: p-c01-4 after seq 2"}}, s)
}
