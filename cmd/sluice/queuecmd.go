package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/queue"
)

func queueCommands() []command {
	return []command{
		{"create", "create a queue", queueCreate},
		{"list", "list queues", queueList},
		{"describe", "show a queue's settings and what it holds", queueDescribe},
		{"send", "send a message to a queue", queueSend},
		{"peek", "print the oldest messages without locking them", queuePeek},
		{"receive", "lock and print messages with their lock tokens", queueReceive},
		{"complete", "remove received messages: they were processed", queueComplete},
		{"abandon", "release received messages to be delivered again", queueAbandon},
		{"depth", "show how many messages a queue holds", queueDepth},
		{"purge", "remove every message of a queue", queuePurge},
		{"delete", "delete a queue and its messages", queueDelete},
	}
}

func runQueue(args []string) error {
	return runVerbs("queue", `Manage work queues: each message is locked by one receiver while it is
processed, then completed, or abandoned to be delivered again.`, queueCommands(), args)
}

func queuePath(name string, rest ...string) string {
	return "/api/v1/queues/" + url.PathEscape(name) + strings.Join(rest, "")
}

// ttlText says how long a queue keeps its messages.
func ttlText(ttl string) string {
	if strings.HasPrefix(ttl, "-") {
		return "until completed"
	}
	return ttl
}

func queueCreate(args []string) error {
	fs := flagSet("queue create", "sluice queue create NAME [flags]", `
Create a queue.

Examples:
  sluice queue create orders
  sluice queue create thumbnails --lock 5m --max-message-bytes 65536
  sluice queue create audit --ttl -1s      # keep messages until completed`)
	c := clientFlags(fs)
	maxBytes := fs.Int("max-message-bytes", queue.DefaultMaxMessageBytes, "bound on a message's body and properties")
	lock := fs.Duration("lock", queue.DefaultLock, "how long a received message stays locked unless renewed (1s-12h)")
	ttl := fs.Duration("ttl", queue.DefaultTTL, "how long a message is kept; negative: until completed")
	replicas := fs.Int("replicas", 0, "copies a NATS cluster keeps of the queue, 1-5 (0: the instance's --replicas)")
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	var q gateway.QueueJSON
	raw, err := c.do("POST", "/api/v1/queues", nil, "application/json", jsonBody(gateway.CreateQueueRequest{
		Name: name, MaxMessageBytes: *maxBytes, Lock: lock.String(), TTL: ttl.String(), Replicas: *replicas}), &q)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created queue %s: lock %s, messages kept %s, at most %d bytes each\n", q.Name, q.Lock, ttlText(q.TTL), q.MaxMessageBytes)
	})
	return nil
}

func queueList(args []string) error {
	fs := flagSet("queue list", "sluice queue list [flags]", "List queues.")
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct{ Queues []gateway.QueueJSON }
	raw, err := c.do("GET", "/api/v1/queues", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tLOCK\tKEPT\tMAX BYTES\tCREATED")
		for _, q := range out.Queues {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", q.Name, q.Lock, ttlText(q.TTL), q.MaxMessageBytes, q.Created.Local().Format(time.DateTime))
		}
	})
	return nil
}

// describeQueue fetches a queue's definition and stats.
func (c *client) describeQueue(name string) (gateway.QueueJSON, []byte, error) {
	var q gateway.QueueJSON
	raw, err := c.do("GET", queuePath(name), nil, "", nil, &q)
	if err == nil && q.Stats == nil {
		q.Stats = &gateway.QueueStatsJSON{}
	}
	return q, raw, err
}

func queueDescribe(args []string) error {
	fs := flagSet("queue describe", "sluice queue describe NAME [flags]", "Show a queue's settings and the messages it holds.")
	c := clientFlags(fs)
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	q, raw, err := c.describeQueue(name)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "queue %s: lock %s, messages kept %s, at most %d bytes each, created %s\n\n",
			q.Name, q.Lock, ttlText(q.TTL), q.MaxMessageBytes, q.Created.Local().Format(time.DateTime))
		fmt.Fprintln(w, "DEPTH\tLOCKED\tDELAYED\tOLDEST ENQUEUED")
		fmt.Fprintf(w, "%d\t%d\t%d\t%s\n", q.Stats.Depth, q.Stats.Locked, q.Stats.Delayed, oldestText(*q.Stats))
	})
	return nil
}

func oldestText(st gateway.QueueStatsJSON) string {
	if st.OldestEnqueued.IsZero() {
		return "-"
	}
	age := time.Duration(st.OldestAgeSeconds * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%s (%s ago)", st.OldestEnqueued.Local().Format(time.DateTime), age)
}

func queueDepth(args []string) error {
	fs := flagSet("queue depth", "sluice queue depth NAME [flags]", `
Show how many messages a queue holds: its depth (visible or locked
messages), how many of them are locked, how many are delayed, and the age
of the oldest. With --json, print those numbers as one object.

Example:
  sluice queue depth orders --json | jq .depth`)
	c := clientFlags(fs)
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	q, _, err := c.describeQueue(name)
	if err != nil {
		return err
	}
	st := *q.Stats
	c.print(append(jsonBody(st), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "queue %s: %d messages (%d locked, %d visible), %d delayed", name, st.Depth, st.Locked, st.Depth-min(st.Locked, st.Depth), st.Delayed)
		if !st.OldestEnqueued.IsZero() {
			fmt.Fprintf(w, "; oldest enqueued %s", oldestText(st))
		}
		fmt.Fprintln(w)
	})
	return nil
}

// stdin is where send and put read a body from standard input; tests
// replace it.
var stdin io.Reader = os.Stdin

func queueSend(args []string) error {
	fs := flagSet("queue send", "sluice queue send NAME [BODY... | -] [flags]", `
Send messages to a queue. Each BODY argument is one message; '-', or no
BODY when standard input is not a terminal, sends standard input, all of
it, as one message. Bodies are sent as they are, byte for byte.

Examples:
  sluice queue send orders '{"order":42}'
  sluice queue send orders '{"order":43}' --property tenant=acme --delay 10s
  sluice queue send thumbnails - < photo.jpg
  echo 'rebuild index' | sluice queue send jobs --ttl 1h`)
	c := clientFlags(fs)
	delay := fs.Duration("delay", 0, "keep the messages invisible for this long")
	ttl := fs.Duration("ttl", 0, "how long the messages are kept (default: the queue's; negative: until completed)")
	var props multiFlag
	fs.Var(&props, "property", "message property name=value (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("give the queue name")
	}
	name, bodies := pos[0], pos[1:]
	properties := map[string]string{}
	for _, p := range props {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usagef("--property %q: use name=value", p)
		}
		properties[k] = v
	}
	if *delay < 0 {
		return usagef("--delay %s: must not be negative", *delay)
	}
	if len(bodies) == 0 {
		if f, ok := stdin.(*os.File); ok && isTerminal(f) {
			return usagef("no message: give BODY arguments, or pipe the body on standard input")
		}
		bodies = []string{"-"}
	}
	stdins := 0
	for _, b := range bodies {
		if b == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return usagef("'-' (standard input) can be given once")
	}
	req := gateway.QueueSendRequest{Messages: make([]gateway.QueueOutgoingJSON, len(bodies))}
	for i, b := range bodies {
		if b == "-" {
			in, err := io.ReadAll(stdin)
			if err != nil {
				return fmt.Errorf("read standard input: %w", err)
			}
			if len(in) == 0 {
				return usagef("no message: standard input is empty")
			}
			b = string(in)
		}
		m := &req.Messages[i]
		if utf8.ValidString(b) {
			m.BodyText = &b
		} else {
			enc := base64.StdEncoding.EncodeToString([]byte(b))
			m.BodyBase64 = &enc
		}
		if len(properties) > 0 {
			m.Properties = properties
		}
		if *delay > 0 {
			m.Delay = delay.String()
		}
		if *ttl != 0 {
			m.TTL = ttl.String()
		}
	}
	var resp gateway.QueueSendResponse
	raw, err := c.do("POST", queuePath(name, "/messages"), nil, "application/json", jsonBody(req), &resp)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		for _, id := range resp.IDs {
			if id == 0 {
				fmt.Fprintf(w, "sent a message to queue %s, visible in %s (it gets its ID then)\n", name, *delay)
				continue
			}
			fmt.Fprintf(w, "sent message %d to queue %s\n", id, name)
		}
	})
	return nil
}

// printMessages prints received or peeked messages, each as a header line,
// its lock token if it has one, and its body.
func printMessages(w io.Writer, msgs []gateway.QueueMessageJSON) {
	for i, m := range msgs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "message %d  enqueued %s  dequeue count %d", m.ID, m.Enqueued.Local().Format("2006-01-02 15:04:05.000"), m.DequeueCount)
		keys := make([]string, 0, len(m.Properties))
		for k := range m.Properties {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s=%s", k, m.Properties[k])
		}
		fmt.Fprintln(w)
		if m.LockToken != "" {
			fmt.Fprintf(w, "lock token: %s\n", m.LockToken)
		}
		if m.BodyText != nil {
			fmt.Fprint(w, *m.BodyText)
			if !strings.HasSuffix(*m.BodyText, "\n") {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintf(w, "<binary, %d bytes; --json shows it in base64>\n", len(m.BodyBase64))
		}
	}
}

func queuePeek(args []string) error {
	fs := flagSet("queue peek", "sluice queue peek NAME [flags]", `
Print the oldest messages of a queue without locking them (locked ones
included).`)
	c := clientFlags(fs)
	n := fs.Int("max", 10, "print at most this many messages (1-1000)")
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	var out gateway.QueueMessagesResponse
	raw, err := c.do("GET", queuePath(name, "/peek"), url.Values{"max": {strconv.Itoa(*n)}}, "", nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		stdout.Write(raw)
		return nil
	}
	if len(out.Messages) == 0 {
		fmt.Fprintf(stderr, "queue %s is empty\n", name)
	}
	printMessages(stdout, out.Messages)
	return nil
}

func queueReceive(args []string) error {
	fs := flagSet("queue receive", "sluice queue receive NAME [flags]", `
Receive messages: each is locked for the queue's lock duration and printed
with its lock token. Complete a message when it is processed, or abandon it
to have it delivered again; a message whose lock expires is delivered again.
With --complete, the messages are completed right after they are printed.

Examples:
  sluice queue receive orders --max 10 --wait 5s
  sluice queue complete orders '$JS.ACK.queue-orders.sluice.1.7.7.1767366245000000000.0'
  sluice queue receive orders --max 1000 --complete     # drain (they are gone)`)
	c := clientFlags(fs)
	n := fs.Int("max", 1, "receive at most this many messages (1-1000)")
	wait := fs.Duration("wait", 0, "wait up to this long for a first message (at most 30s)")
	complete := fs.Bool("complete", false, "complete the messages once they are printed")
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	q := url.Values{"max": {strconv.Itoa(*n)}, "wait": {wait.String()}}
	var out gateway.QueueMessagesResponse
	raw, err := c.do("POST", queuePath(name, "/receive"), q, "", nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		stdout.Write(raw)
	} else if len(out.Messages) == 0 {
		fmt.Fprintf(stderr, "no messages: none is visible in queue %s (wait for one with --wait 10s)\n", name)
	} else {
		printMessages(stdout, out.Messages)
	}
	if !*complete || len(out.Messages) == 0 {
		return nil
	}
	tokens := make([]string, len(out.Messages))
	for i, m := range out.Messages {
		tokens[i] = m.LockToken
	}
	if err := c.settle(name, "complete", tokens, 0); err != nil {
		return err
	}
	// The received messages are the output; this is a note.
	fmt.Fprintf(stderr, "completed %d message(s)\n", len(tokens))
	return nil
}

// settle completes or abandons (op) messages by lock token.
func (c *client) settle(name, op string, tokens []string, delay time.Duration) error {
	for i, t := range tokens {
		var body []byte
		if op == "abandon" {
			req := gateway.QueueAbandonRequest{LockToken: t}
			if delay > 0 {
				req.Delay = delay.String()
			}
			body = jsonBody(req)
		} else {
			body = jsonBody(gateway.QueueLockRequest{LockToken: t})
		}
		if _, err := c.do("POST", queuePath(name, "/"+op), nil, "application/json", body, nil); err != nil {
			if len(tokens) > 1 {
				return fmt.Errorf("message %d of %d (the ones before it were done): %w", i+1, len(tokens), err)
			}
			return err
		}
	}
	return nil
}

// nameAndTokens splits the positional arguments of complete and abandon.
func nameAndTokens(pos []string) (string, []string, error) {
	if len(pos) < 2 {
		return "", nil, usagef("give the queue name and the lock token(s) of received messages")
	}
	return pos[0], pos[1:], nil
}

func queueComplete(args []string) error {
	fs := flagSet("queue complete", "sluice queue complete NAME LOCK_TOKEN... [flags]", `
Complete received messages: they were processed and are removed. A lock
token is printed by 'sluice queue receive'; quote it, as it starts with '$'.

Example:
  sluice queue complete orders '$JS.ACK.queue-orders.sluice.1.7.7.1767366245000000000.0'`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, tokens, err := nameAndTokens(pos)
	if err != nil {
		return err
	}
	if err := c.settle(name, "complete", tokens, 0); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]int{"completed": len(tokens)}), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "completed %d message(s) of queue %s\n", len(tokens), name)
	})
	return nil
}

func queueAbandon(args []string) error {
	fs := flagSet("queue abandon", "sluice queue abandon NAME LOCK_TOKEN... [flags]", `
Abandon received messages: release their locks so that they are delivered
again, at once or after --delay. Their dequeue count goes up.

Example:
  sluice queue abandon orders '$JS.ACK.queue-orders.sluice.1.7.7.1767366245000000000.0' --delay 30s`)
	c := clientFlags(fs)
	delay := fs.Duration("delay", 0, "deliver the messages again after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, tokens, err := nameAndTokens(pos)
	if err != nil {
		return err
	}
	if *delay < 0 {
		return usagef("--delay %s: must not be negative", *delay)
	}
	if err := c.settle(name, "abandon", tokens, *delay); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]int{"abandoned": len(tokens)}), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "abandoned %d message(s) of queue %s\n", len(tokens), name)
	})
	return nil
}

func queuePurge(args []string) error {
	fs := flagSet("queue purge", "sluice queue purge NAME --yes [flags]", `
Remove every message of a queue, delayed and locked ones included. The
queue stays.`)
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: the messages cannot be recovered")
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("purging queue %s destroys its messages; add --yes to confirm", name)
	}
	var out gateway.QueuePurgeResponse
	raw, err := c.do("POST", queuePath(name, "/purge"), nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "purged %d messages from queue %s\n", out.Purged, name) })
	return nil
}

func queueDelete(args []string) error {
	fs := flagSet("queue delete", "sluice queue delete NAME --yes [flags]", "Delete a queue with all its messages.")
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: the messages cannot be recovered")
	name, err := parseName(fs, args, "queue")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("deleting queue %s destroys its messages; add --yes to confirm", name)
	}
	if _, err := c.do("DELETE", queuePath(name), nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"deleted": name}), '\n'), func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted queue %s\n", name) })
	return nil
}
