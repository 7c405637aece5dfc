package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/queue"
)

// queueFixture is an API server on a real queue service on an embedded
// engine.
type queueFixture struct {
	*fixture
	eng    *engine.Engine
	queues *queue.Service
}

var jsonType = []string{"Content-Type", "application/json"}

func setupQueues(t *testing.T, configure ...func(*gateway.Config)) *queueFixture {
	t.Helper()
	eng := enginetest.Embedded(t)
	qs := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { require.NoError(t, qs.Stop(context.Background())) })
	cfg := gateway.Config{
		Queues:          qs,
		Logger:          slog.New(slog.DiscardHandler),
		MaxRequestBytes: maxRequestBytes,
	}
	for _, fn := range configure {
		fn(&cfg)
	}
	srv := httptest.NewServer(gateway.NewServer(cfg))
	t.Cleanup(srv.Close)
	return &queueFixture{fixture: &fixture{url: srv.URL}, eng: eng, queues: qs}
}

// createQueue creates a queue with the given JSON body.
func (f *queueFixture) createQueue(t *testing.T, body string) gateway.QueueJSON {
	t.Helper()
	var q gateway.QueueJSON
	f.doJSON(t, http.StatusCreated, &q, "POST", "/api/v1/queues", []byte(body), jsonType...)
	return q
}

func (f *queueFixture) describe(t *testing.T, name string) gateway.QueueJSON {
	t.Helper()
	var q gateway.QueueJSON
	f.doJSON(t, http.StatusOK, &q, "GET", "/api/v1/queues/"+name, nil)
	require.NotNil(t, q.Stats)
	return q
}

// stored is what a queue holds: visible, locked and delayed messages.
func (f *queueFixture) stored(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := f.queues.Stats(context.Background(), name)
	require.NoError(t, err)
	return st.Depth + st.Delayed
}

func (f *queueFixture) send(t *testing.T, name, body string) []uint64 {
	t.Helper()
	var resp gateway.QueueSendResponse
	f.doJSON(t, http.StatusCreated, &resp, "POST", "/api/v1/queues/"+name+"/messages", []byte(body), jsonType...)
	require.Equal(t, len(resp.IDs), resp.Count)
	return resp.IDs
}

func (f *queueFixture) receive(t *testing.T, name, query string) []gateway.QueueMessageJSON {
	t.Helper()
	var resp gateway.QueueMessagesResponse
	f.doJSON(t, http.StatusOK, &resp, "POST", "/api/v1/queues/"+name+"/receive"+query, nil)
	require.NotNil(t, resp.Messages, "messages is an array, never null")
	return resp.Messages
}

func (f *queueFixture) peek(t *testing.T, name, query string) []gateway.QueueMessageJSON {
	t.Helper()
	var resp gateway.QueueMessagesResponse
	f.doJSON(t, http.StatusOK, &resp, "GET", "/api/v1/queues/"+name+"/peek"+query, nil)
	require.NotNil(t, resp.Messages)
	return resp.Messages
}

// lockOp completes, abandons or renews by token and expects 204.
func (f *queueFixture) lockOp(t *testing.T, name, op, body string) {
	t.Helper()
	r := f.do(t, "POST", "/api/v1/queues/"+name+"/"+op, []byte(body), jsonType...)
	require.Equal(t, http.StatusNoContent, r.Code, "%s: %s", op, r.Body)
	require.Empty(t, r.Body)
}

func tokenBody(token string) string { return fmt.Sprintf(`{"lock_token":%q}`, token) }

func texts(t *testing.T, msgs []gateway.QueueMessageJSON) []string {
	t.Helper()
	out := make([]string, len(msgs))
	for i, m := range msgs {
		require.Equal(t, string(m.BodyBase64), *m.BodyText)
		out[i] = *m.BodyText
	}
	return out
}

func TestQueueRoutesNeedTheService(t *testing.T) {
	t.Parallel()
	f := setup(t)
	requireError(t, f.do(t, "GET", "/api/v1/queues", nil), http.StatusNotFound, "no such endpoint")
}

func TestQueueAdmin(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)

	created := f.createQueue(t, `{"name":"orders","max_message_bytes":1000,"lock":"45s","ttl":"72h"}`)
	require.Equal(t, gateway.QueueJSON{Name: "orders", MaxMessageBytes: 1000, Lock: "45s", TTL: "72h0m0s", Replicas: 1, Created: created.Created}, created)
	require.WithinDuration(t, time.Now(), created.Created, time.Minute)
	dflt := f.createQueue(t, `{"name":"Audit_log-2"}`)
	require.Equal(t, queue.DefaultMaxMessageBytes, dflt.MaxMessageBytes)
	require.Equal(t, queue.DefaultLock.String(), dflt.Lock)
	require.Equal(t, queue.DefaultTTL.String(), dflt.TTL)
	forever := f.createQueue(t, `{"name":"forever","ttl":"-1s"}`)
	require.Equal(t, "-1s", forever.TTL, "a negative TTL keeps messages until completed")

	var list struct{ Queues []gateway.QueueJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/queues", nil)
	require.Equal(t, []gateway.QueueJSON{dflt, forever, created}, list.Queues, "sorted by name, without stats")

	desc := f.describe(t, "orders")
	require.Equal(t, created.Name, desc.Name)
	require.Equal(t, created.Lock, desc.Lock)
	require.Equal(t, gateway.QueueStatsJSON{}, *desc.Stats)
	r := f.do(t, "GET", "/api/v1/queues/orders", nil)
	require.NotContains(t, string(r.Body), "oldest_enqueued", "absent when the queue is empty")

	f.send(t, "orders", `{"messages":[{"body":1},{"body":2},{"body":3,"delay":"1h"}]}`)
	f.receive(t, "orders", "")
	desc = f.describe(t, "orders")
	require.Equal(t, uint64(2), desc.Stats.Depth)
	require.Equal(t, uint64(1), desc.Stats.Locked)
	require.Equal(t, uint64(1), desc.Stats.Delayed)
	require.WithinDuration(t, time.Now(), desc.Stats.OldestEnqueued, time.Minute)
	require.Positive(t, desc.Stats.OldestAgeSeconds)

	// Delete; then the queue is gone everywhere.
	r = f.do(t, "DELETE", "/api/v1/queues/orders", nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)
	require.Empty(t, r.Body)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/queues/orders", ""},
		{"DELETE", "/api/v1/queues/orders", ""},
		{"POST", "/api/v1/queues/orders/messages", `{"messages":[{"body":1}]}`},
		{"POST", "/api/v1/queues/orders/receive", ""},
		{"GET", "/api/v1/queues/orders/peek", ""},
		{"POST", "/api/v1/queues/orders/purge", ""},
	} {
		requireError(t, f.do(t, c.method, c.path, []byte(c.body), jsonType...), http.StatusNotFound,
			"queue orders not found", "POST /api/v1/queues", "sluice queue create orders")
	}
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/queues", nil)
	require.Len(t, list.Queues, 2)

	// The name is free again.
	f.createQueue(t, `{"name":"orders"}`)
}

func TestCreateQueueErrors(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	f.createQueue(t, `{"name":"taken","lock":"10s"}`)

	cases := []struct {
		name  string
		body  string
		code  int
		parts []string
	}{
		{"empty body", ``, 400, []string{"body is empty"}},
		{"malformed", `{"name":"a1",`, 400, []string{"not valid JSON"}},
		{"not an object", `["a1"]`, 400, []string{"not valid JSON", "array"}},
		{"wrong type", `{"name":"a1","max_message_bytes":"2"}`, 400, []string{"max_message_bytes"}},
		{"unknown field", `{"name":"a1","lock_time":"5s"}`, 400, []string{`unknown field "lock_time"`}},
		{"trailing data", `{"name":"a1"} {}`, 400, []string{"after the JSON object"}},
		{"no name", `{}`, 400, []string{`queue name ""`}},
		{"name with dot", `{"name":"a.b"}`, 400, []string{`queue name "a.b"`, "letters, digits"}},
		{"name too long", `{"name":"` + strings.Repeat("a", 65) + `"}`, 400, []string{"queue name", "1-64"}},
		{"bad lock", `{"name":"a1","lock":"a while"}`, 400, []string{`lock "a while" is not a duration`}},
		{"lock too short", `{"name":"a1","lock":"10ms"}`, 400, []string{"lock 10ms", "between 1s and 12h"}},
		{"lock too long", `{"name":"a1","lock":"13h"}`, 400, []string{"lock 13h0m0s"}},
		{"negative lock", `{"name":"a1","lock":"-5s"}`, 400, []string{"lock -5s"}},
		{"bad ttl", `{"name":"a1","ttl":"7 days"}`, 400, []string{`ttl "7 days" is not a duration`, "-1s"}},
		{"ttl too short", `{"name":"a1","ttl":"500ms"}`, 400, []string{"ttl 500ms", "at least 1s"}},
		{"negative size", `{"name":"a1","max_message_bytes":-1}`, 400, []string{"max message size -1"}},
		{"size too large", `{"name":"a1","max_message_bytes":1073741824}`, 400, []string{"max message size 1073741824", "max_payload"}},
		{"duplicate", `{"name":"taken"}`, 409, []string{"already exists", "taken"}},
		{"too large", `{"name":"big","lock":"` + strings.Repeat(" ", 1<<20) + `"}`, 413, []string{"over the limit of 1048576 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, "POST", "/api/v1/queues", []byte(c.body), jsonType...), c.code, c.parts...)
		})
	}
	// Nothing was created, and the existing queue was left as it was.
	var list struct{ Queues []gateway.QueueJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/queues", nil)
	require.Len(t, list.Queues, 1)
	require.Equal(t, "10s", list.Queues[0].Lock)
}

func TestBadQueueNameInPath(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	routes := []struct{ method, path, body string }{
		{"GET", "/api/v1/queues/%s", ""},
		{"DELETE", "/api/v1/queues/%s", ""},
		{"POST", "/api/v1/queues/%s/messages", `{"messages":[{"body":1}]}`},
		{"POST", "/api/v1/queues/%s/receive", ""},
		{"POST", "/api/v1/queues/%s/complete", `{"lock_token":"$JS.ACK.x"}`},
		{"POST", "/api/v1/queues/%s/abandon", `{"lock_token":"$JS.ACK.x"}`},
		{"POST", "/api/v1/queues/%s/renew", `{"lock_token":"$JS.ACK.x"}`},
		{"GET", "/api/v1/queues/%s/peek", ""},
		{"POST", "/api/v1/queues/%s/purge", ""},
	}
	for _, name := range []string{"bad.name", "-lead", strings.Repeat("x", 65)} {
		for _, c := range routes {
			r := f.do(t, c.method, fmt.Sprintf(c.path, name), []byte(c.body), jsonType...)
			requireError(t, r, http.StatusBadRequest, fmt.Sprintf("queue name %q", name), "letters, digits")
		}
	}
	for _, c := range routes {
		r := f.do(t, c.method, fmt.Sprintf(c.path, "nope"), []byte(c.body), jsonType...)
		requireError(t, r, http.StatusNotFound, "queue nope not found", "sluice queue create nope")
	}
	// None of it created a queue.
	var list struct{ Queues []gateway.QueueJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/queues", nil)
	require.Empty(t, list.Queues)
}

func TestQueueMessages(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	const q = "work"
	f.createQueue(t, `{"name":"work","lock":"5s"}`)

	// Every way of giving a body.
	before := time.Now()
	ids := f.send(t, q, `{"messages":[
		{"body": {"k": [1, 2]}, "properties": {"kind": "json", "odd key: é": "line\nbreak"}},
		{"body_text": "plain"},
		{"body_base64": "AAH/"},
		{"body_base64": "aGk"},
		{"ttl": "1h"},
		{"body": "a string", "ttl": "-1s"}]}`)
	require.Len(t, ids, 6)
	for i, id := range ids {
		require.Equal(t, ids[0]+uint64(i), id, "one request, consecutive IDs")
	}
	var one gateway.QueueSendResponse
	f.doJSON(t, http.StatusCreated, &one, "POST", "/api/v1/queues/"+q+"/messages", []byte("raw text\n"), "Content-Type", "text/plain; charset=utf-8")
	require.Equal(t, gateway.QueueSendResponse{Count: 1, IDs: []uint64{ids[5] + 1}}, one)
	f.doJSON(t, http.StatusCreated, &one, "POST", "/api/v1/queues/"+q+"/messages?ttl=1h", []byte{0xff, 0}, "Content-Type", "application/octet-stream")
	require.Equal(t, ids[5]+2, one.IDs[0])
	// The last send shows in the depth a moment after its answer.
	require.Eventually(t, func() bool { return f.describe(t, q).Stats.Depth == 8 }, time.Minute, 10*time.Millisecond)

	// Peek locks nothing and shows no tokens.
	peeked := f.peek(t, q, "?max=2")
	require.Len(t, peeked, 2)
	require.Equal(t, ids[0], peeked[0].ID)
	require.Empty(t, peeked[0].LockToken)
	require.Zero(t, peeked[0].DequeueCount)
	require.Len(t, f.peek(t, q, ""), 8, "default 10")

	got := f.receive(t, q, "?max=16&wait=1s")
	require.Len(t, got, 8)
	require.Equal(t, `{"k": [1, 2]}`, *got[0].BodyText, "a JSON body is stored as sent")
	require.Equal(t, map[string]string{"kind": "json", "odd key: é": "line\nbreak"}, got[0].Properties)
	require.Equal(t, "plain", *got[1].BodyText)
	require.Equal(t, []byte{0, 1, 0xff}, got[2].BodyBase64)
	require.Nil(t, got[2].BodyText, "a body that is not UTF-8 is not shown as text")
	require.Equal(t, "hi", *got[3].BodyText, "unpadded base64 is accepted")
	require.Empty(t, *got[4].BodyText, "no body is an empty body")
	require.Equal(t, `"a string"`, *got[5].BodyText)
	require.Equal(t, "raw text\n", *got[6].BodyText)
	require.Equal(t, []byte{0xff, 0}, got[7].BodyBase64)
	for i, m := range got[:6] {
		require.Equal(t, ids[i], m.ID)
		require.Equal(t, 1, m.DequeueCount)
		require.NotEmpty(t, m.LockToken)
		require.WithinRange(t, m.Enqueued, before.Add(-time.Second), time.Now().Add(time.Second))
	}
	require.NotNil(t, got[4].BodyBase64, "an empty body is \"\", not null")
	require.Empty(t, f.receive(t, q, ""), "every message is locked")
	st := f.describe(t, q).Stats
	require.Equal(t, uint64(8), st.Locked)

	// Renew, complete, abandon by token.
	f.lockOp(t, q, "renew", tokenBody(got[0].LockToken))
	for _, m := range got[:7] {
		f.lockOp(t, q, "complete", tokenBody(m.LockToken))
	}
	f.lockOp(t, q, "abandon", tokenBody(got[7].LockToken))
	again := f.receive(t, q, "?wait=5s")
	require.Len(t, again, 1)
	require.Equal(t, got[7].ID, again[0].ID)
	require.Equal(t, 2, again[0].DequeueCount)
	f.lockOp(t, q, "abandon", fmt.Sprintf(`{"lock_token":%q,"delay":"600ms"}`, again[0].LockToken))
	require.Empty(t, f.receive(t, q, "?wait=200ms"), "invisible during the abandon delay")
	third := f.receive(t, q, "?wait=5s")
	require.Len(t, third, 1)
	require.Equal(t, 3, third[0].DequeueCount)
	f.lockOp(t, q, "complete", tokenBody(third[0].LockToken))
	require.Zero(t, f.describe(t, q).Stats.Depth)

	// Delayed messages get their ID when they become visible; purge
	// removes them too.
	ids = f.send(t, q, `{"messages":[{"body":1,"delay":"1h"},{"body":2}]}`)
	require.Zero(t, ids[0])
	require.NotZero(t, ids[1])
	// The server counts a new message in the consumer's pending count a
	// moment after acknowledging it: wait until the visible one shows.
	require.Eventually(t, func() bool { return f.describe(t, q).Stats.Depth == 1 }, time.Minute, 10*time.Millisecond)
	st = f.describe(t, q).Stats
	require.Equal(t, uint64(1), st.Delayed)
	require.Equal(t, uint64(1), st.Depth)
	var purged gateway.QueuePurgeResponse
	f.doJSON(t, http.StatusOK, &purged, "POST", "/api/v1/queues/"+q+"/purge", nil)
	require.Equal(t, uint64(2), purged.Purged)
	require.Zero(t, f.stored(t, q))
	f.doJSON(t, http.StatusOK, &purged, "POST", "/api/v1/queues/"+q+"/purge", nil)
	require.Zero(t, purged.Purged)
}

func TestReceiveWaits(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	f.createQueue(t, `{"name":"w"}`)
	start := time.Now()
	require.Empty(t, f.receive(t, "w", "?wait=300ms"))
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "waited for a message")

	// Send once the receive waits: when the server holds its pull request
	// for a message (one that may wait, unlike the first look of a
	// receive, which takes only what is there).
	waiting := make(chan struct{}, 1)
	sub, err := f.eng.Conn.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+queue.StreamName("w")+".>", func(m *nats.Msg) {
		if !strings.Contains(string(m.Data), `"no_wait"`) {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	})
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, f.eng.Conn.Flush())
	sent := make(chan error, 1)
	go func() {
		<-waiting
		_, err := f.queues.Send(context.Background(), "w", []queue.Outgoing{{Body: []byte("late")}})
		sent <- err
	}()
	got := f.receive(t, "w", "?max=5&wait=20s")
	require.NoError(t, <-sent)
	require.Equal(t, []string{"late"}, texts(t, got))
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	f := setupQueues(t, func(c *gateway.Config) { c.MaxRequestBytes = 64 << 10 })
	const q = "strict"
	f.createQueue(t, `{"name":"strict","max_message_bytes":1000}`)
	f.send(t, q, `{"messages":[{"body":"already there"}]}`)
	// The server counts a new message in the consumer's pending count a
	// moment after acknowledging it (asynchronously): wait until it shows.
	require.Eventually(t, func() bool { return f.stored(t, q) == 1 }, time.Minute, 10*time.Millisecond)

	big := strings.Repeat("x", 1001)
	tooMany := `{"messages":[` + strings.Repeat(`{},`, gateway.MaxSendMessages) + `{}]}`
	cases := []struct {
		name   string
		query  string
		header []string
		body   string
		code   int
		parts  []string
	}{
		// Content-Type
		{"missing content type", "", nil, `{"messages":[{}]}`, 415, []string{"missing Content-Type", "application/json", "text/plain"}},
		{"unsupported content type", "", []string{"Content-Type", "application/xml"}, `<a/>`, 415, []string{`unsupported Content-Type "application/xml"`, "application/octet-stream"}},
		{"hub envelope", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1}]`, 415, []string{"unsupported Content-Type"}},

		// Malformed JSON
		{"empty json", "", jsonType, ``, 400, []string{"body is empty", `{"messages"`}},
		{"malformed", "", jsonType, `{"messages":[{"body":1},{"body":]}`, 400, []string{"invalid JSON at byte offset 32"}},
		{"trailing data", "", jsonType, `{"messages":[{}]} {}`, 400, []string{"invalid JSON"}},
		{"invalid utf-8", "", jsonType, "{\"messages\":[{\"body_text\":\"\xff\"}]}", 400, []string{"invalid UTF-8 at byte offset 27"}},
		{"an array", "", jsonType, `[{"body":1}]`, 400, []string{"not a send request", `{"messages"`}},
		{"unknown top-level field", "", jsonType, `{"messages":[{}],"queue":"x"}`, 400, []string{`unknown field "queue"`}},
		{"no messages field", "", jsonType, `{}`, 400, []string{"no messages"}},
		{"no messages", "", jsonType, `{"messages":[]}`, 400, []string{"no messages"}},
		{"message not an object", "", jsonType, `{"messages":[{},"x"]}`, 400, []string{"message 1", "JSON object", "string"}},
		{"null message", "", jsonType, `{"messages":[{},null]}`, 400, []string{"message 1", "null"}},
		{"unknown message field", "", jsonType, `{"messages":[{},{"bdy":1}]}`, 400, []string{"message 1", `unknown field "bdy"`}},
		{"two bodies", "", jsonType, `{"messages":[{"body":1,"body_text":"1"}]}`, 400, []string{"message 0", "only one of body, body_text and body_base64"}},
		{"three bodies", "", jsonType, `{"messages":[{"body":1,"body_text":"1","body_base64":"MQ=="}]}`, 400, []string{"only one of"}},
		{"bad base64", "", jsonType, `{"messages":[{},{"body_base64":"!!"}]}`, 400, []string{"message 1", "body_base64 is not valid base64"}},
		{"property not a string", "", jsonType, `{"messages":[{"properties":{"n":1}}]}`, 400, []string{"message 0", "properties"}},
		{"bad delay", "", jsonType, `{"messages":[{},{"delay":"soon"}]}`, 400, []string{`message 1: delay "soon" is not a duration`}},
		{"negative delay", "", jsonType, `{"messages":[{"delay":"-1s"}]}`, 400, []string{"delay -1s for message 0", "must not be negative"}},
		{"bad ttl", "", jsonType, `{"messages":[{"ttl":"1 day"}]}`, 400, []string{`message 0: ttl "1 day" is not a duration`}},
		{"ttl too short", "", jsonType, `{"messages":[{"ttl":"10ms"}]}`, 400, []string{"ttl 10ms for message 0", "at least 1s"}},
		{"query delay with json", "?delay=1s", jsonType, `{"messages":[{}]}`, 400, []string{"query parameter delay", "per message"}},

		// Raw bodies
		{"empty text", "", []string{"Content-Type", "text/plain"}, ``, 400, []string{"body is empty", "text/plain"}},
		{"empty octet-stream", "", []string{"Content-Type", "application/octet-stream"}, ``, 400, []string{"body is empty"}},
		{"bad query delay", "?delay=later", []string{"Content-Type", "text/plain"}, `x`, 400, []string{`query parameter delay "later" is not a duration`}},
		{"negative query delay", "?delay=-5s", []string{"Content-Type", "text/plain"}, `x`, 400, []string{"delay -5s", "must not be negative"}},
		{"bad query ttl", "?ttl=x", []string{"Content-Type", "application/octet-stream"}, `x`, 400, []string{`query parameter ttl "x"`}},

		// Sizes
		{"message too large", "", []string{"Content-Type", "text/plain"}, big, 413, []string{"message 0 is 1001 bytes", "limit of queue strict is 1000 bytes"}},
		{"last message too large", "", jsonType, `{"messages":[{"body":1},{"body_text":"` + big + `"}]}`, 413, []string{"message 1 is 1001 bytes"}},
		{"properties count", "", jsonType, `{"messages":[{"body_text":"` + big[:900] + `","properties":{"p":"` + big[:100] + `"}}]}`, 413, []string{"message 0 is 1008 bytes"}},
		{"too many messages", "", jsonType, tooMany, 413, []string{"1001 messages in one request, more than 1000"}},
		{"request too large", "", []string{"Content-Type", "text/plain"}, strings.Repeat("y", 64<<10+1), 413, []string{"over the limit of 65536 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/queues/"+q+"/messages"+c.query, []byte(c.body), c.header...)
			requireError(t, r, c.code, c.parts...)
			require.Equal(t, uint64(1), f.stored(t, q), "a rejected request writes nothing")
		})
	}
	// The limits are inclusive.
	f.send(t, q, `{"messages":[{"body_text":"`+big[:1000]+`"}]}`)
	f.send(t, q, `{"messages":[`+strings.Repeat(`{},`, gateway.MaxSendMessages-1)+`{}]}`)
	require.Equal(t, uint64(2+gateway.MaxSendMessages), f.stored(t, q))
}

func TestReceivePeekErrors(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	const q = "rq"
	f.createQueue(t, `{"name":"rq"}`)
	f.send(t, q, `{"messages":[{"body":1}]}`)
	for _, route := range []struct{ method, path string }{{"POST", "receive"}, {"GET", "peek"}} {
		for _, c := range []struct {
			query string
			parts []string
		}{
			{"?max=0", []string{`max="0"`, "1 to 1000"}},
			{"?max=1001", []string{`max="1001"`}},
			{"?max=all", []string{`max="all"`}},
			{"?max=-1", []string{`max="-1"`}},
		} {
			requireError(t, f.do(t, route.method, "/api/v1/queues/"+q+"/"+route.path+c.query, nil), http.StatusBadRequest, c.parts...)
		}
	}
	for _, c := range []struct {
		query string
		parts []string
	}{
		{"?wait=forever", []string{`wait="forever"`, "from 0s to 30s"}},
		{"?wait=-1s", []string{`wait="-1s"`}},
		{"?wait=31s", []string{`wait="31s"`}},
		{"?wait=5", []string{`wait="5"`}},
	} {
		requireError(t, f.do(t, "POST", "/api/v1/queues/"+q+"/receive"+c.query, nil), http.StatusBadRequest, c.parts...)
	}
	// Nothing was locked by the rejected receives.
	st, err := f.queues.Stats(context.Background(), q)
	require.NoError(t, err)
	require.Equal(t, queue.Stats{Depth: 1, OldestEnqueued: st.OldestEnqueued, OldestAge: st.OldestAge}, st)
	r := f.do(t, "GET", "/api/v1/queues/"+q+"/receive", nil)
	requireError(t, r, http.StatusMethodNotAllowed, "method GET is not allowed", "use POST")
	require.Equal(t, "POST", r.Header.Get("Allow"))
}

func TestLockErrors(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	const q = "locks"
	f.createQueue(t, `{"name":"locks"}`)
	f.createQueue(t, `{"name":"other"}`)
	f.send(t, q, `{"messages":[{"body":1}]}`)
	f.send(t, "other", `{"messages":[{"body":2}]}`)
	mine := f.receive(t, q, "")[0]
	theirs := f.receive(t, "other", "")[0]

	for _, op := range []string{"complete", "abandon", "renew"} {
		cases := []struct {
			name, body string
			code       int
			parts      []string
		}{
			{"empty body", ``, 400, []string{"body is empty"}},
			{"malformed", `{"lock_token":`, 400, []string{"not valid JSON"}},
			{"unknown field", `{"token":"x"}`, 400, []string{`unknown field "token"`}},
			{"no token", `{}`, 400, []string{"lock_token is missing"}},
			{"nonsense token", `{"lock_token":"nonsense"}`, 400, []string{"not a lock token of queue locks"}},
			{"wildcard token", `{"lock_token":"$JS.ACK.>"}`, 400, []string{"not a lock token"}},
			{"API subject", `{"lock_token":"$JS.API.STREAM.DELETE.queue-locks"}`, 400, []string{"not a lock token"}},
			{"another queue's token", tokenBody(theirs.LockToken), 400, []string{"not a lock token of queue locks"}},
		}
		if op == "abandon" {
			cases = append(cases,
				struct {
					name, body string
					code       int
					parts      []string
				}{"bad delay", fmt.Sprintf(`{"lock_token":%q,"delay":"soon"}`, mine.LockToken), 400, []string{`delay "soon" is not a duration`}},
				struct {
					name, body string
					code       int
					parts      []string
				}{"negative delay", fmt.Sprintf(`{"lock_token":%q,"delay":"-1s"}`, mine.LockToken), 400, []string{"delay -1s", "must not be negative"}})
		} else {
			cases = append(cases, struct {
				name, body string
				code       int
				parts      []string
			}{"delay is for abandon", fmt.Sprintf(`{"lock_token":%q,"delay":"1s"}`, mine.LockToken), 400, []string{`unknown field "delay"`}})
		}
		for _, c := range cases {
			t.Run(op+" "+c.name, func(t *testing.T) {
				r := f.do(t, "POST", "/api/v1/queues/"+q+"/"+op, []byte(c.body), jsonType...)
				requireError(t, r, c.code, c.parts...)
			})
		}
	}
	// The message is still locked by its receive, and the other queue's too.
	for _, name := range []string{q, "other"} {
		st, err := f.queues.Stats(context.Background(), name)
		require.NoError(t, err)
		require.Equal(t, uint64(1), st.Depth)
		require.Equal(t, uint64(1), st.Locked, name)
	}
	f.lockOp(t, q, "complete", tokenBody(mine.LockToken))
	// The server removes an acknowledged message from a work queue after
	// it answers the acknowledgement: the depth drops a moment later.
	require.Eventually(t, func() bool { return f.stored(t, q) == 0 }, 30*time.Second, 5*time.Millisecond)

	// A token of a queue deleted meanwhile: the queue is not found.
	r := f.do(t, "DELETE", "/api/v1/queues/other", nil)
	require.Equal(t, http.StatusNoContent, r.Code)
	for _, op := range []string{"complete", "abandon", "renew"} {
		requireError(t, f.do(t, "POST", "/api/v1/queues/other/"+op, []byte(tokenBody(theirs.LockToken)), jsonType...),
			http.StatusNotFound, "queue other not found")
	}
}

// TestLockLost: a token whose lock is gone answers 409.
func TestLockLost(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	f.createQueue(t, `{"name":"short","lock":"1s"}`)
	f.send(t, "short", `{"messages":[{"body":1}]}`)
	first := f.receive(t, "short", "")[0]
	second := f.receive(t, "short", "?wait=5s")
	require.Len(t, second, 1, "delivered again when the lock expired")
	require.Equal(t, 2, second[0].DequeueCount)
	for _, op := range []string{"complete", "abandon", "renew"} {
		requireError(t, f.do(t, "POST", "/api/v1/queues/short/"+op, []byte(tokenBody(first.LockToken)), jsonType...),
			http.StatusConflict, "lock of this message of queue short is lost", "expired")
	}
	f.lockOp(t, "short", "complete", tokenBody(second[0].LockToken))
	requireError(t, f.do(t, "POST", "/api/v1/queues/short/complete", []byte(tokenBody(second[0].LockToken)), jsonType...),
		http.StatusConflict, "already completed")
}

func TestQueueRouteMetrics(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	f.createQueue(t, `{"name":"m"}`)
	f.do(t, "GET", "/api/v1/queues/nope", nil)
	r := f.do(t, "GET", "/metrics", nil)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="201",route="queues.create"} 1`)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="404",route="queues.describe"} 1`)
}
