package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
)

// Batches of hub send --lines: a batch is sent when it holds
// linesMaxEvents events or linesMaxBytes bytes of bodies, linesLinger
// after its first line came in, or at the end of the input.
const (
	linesMaxEvents = 1000
	linesMaxBytes  = 1 << 20
)

// linesLinger is how long a batch of --lines waits for more lines; tests
// shorten it.
var linesLinger = 200 * time.Millisecond

func hubSend(args []string) error {
	fs := flagSet("hub send", "sluice hub send NAME [BODY...] [flags]", `
Send events to a hub. Each BODY argument is one event. Without BODY
arguments, events are read from standard input: with --lines, one event
per line, sent in batches as the lines come in (a batch goes when it holds
1,000 events or 1 MiB, or 200 ms after its first line) until the input
ends; otherwise the whole input is one event. A body that is valid JSON is
sent as JSON; any other is sent as its raw bytes.

With --message-id, sending the one event again is harmless: the hub stores
an id once within its duplicate window (10 minutes by default) and answers
a repeat with the stored event's position.

Examples:
  sluice hub send telemetry '{"device":"d1","temp":21.5}' --key d1
  cat events.ndjson | sluice hub send telemetry --lines
  tail -f app.log | sluice hub send logs --lines --property host=web-1
  sluice hub send telemetry hello --property source=cli --partition 2
  sluice hub send orders '{"order":17,"paid":true}' --message-id order-17-paid`)
	c := clientFlags(fs)
	key := fs.String("key", "", "partition key: events with the same key keep their order")
	partition := fs.Int("partition", -1, "explicit partition, 0 or more (instead of a key)")
	lines := fs.Bool("lines", false, "read standard input as one event per line, streamed in batches until it ends")
	messageID := fs.String("message-id", "", "message id of the one event: the hub stores it once within its duplicate window")
	var props multiFlag
	fs.Var(&props, "property", "event property name=value (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("give the hub name")
	}
	s := &eventSender{c: c, hub: pos[0], query: url.Values{}, messageID: *messageID}
	bodies := pos[1:]
	switch {
	case isSet(fs, "partition") && *partition < 0:
		return usagef("--partition %d: give a partition number, 0 or more ('sluice hub describe %s' shows them)", *partition, s.hub)
	case isSet(fs, "partition") && *key != "":
		return usagef("give --key or --partition, not both")
	case *lines && len(bodies) > 0:
		return usagef("--lines reads the events from standard input: give BODY arguments or --lines, not both")
	case *lines && *messageID != "":
		return usagef("--message-id names one event, and --lines sends one per line: send that event on its own")
	}
	if err := hub.ValidateMessageID(*messageID); err != nil {
		return usagef("--message-id: %v", err)
	}
	for _, p := range props {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usagef("--property %q: use name=value", p)
		}
		if s.properties == nil {
			s.properties = map[string]string{}
		}
		s.properties[k] = v
	}
	if *key != "" {
		s.query.Set("partitionKey", *key)
	}
	if isSet(fs, "partition") {
		s.query.Set("partition", strconv.Itoa(*partition))
	}
	if len(bodies) == 0 {
		if f, ok := stdin.(*os.File); ok && isTerminal(f) {
			return usagef("no events: give BODY arguments, or pipe them on standard input (one per line with --lines)")
		}
		if *lines {
			return s.sendLines(stdin)
		}
		in, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		if len(in) == 0 {
			return usagef("no events: standard input is empty")
		}
		return s.send([][]byte{in})
	}
	if *messageID != "" && len(bodies) != 1 {
		return usagef("--message-id names one event, but there are %d: send them one at a time", len(bodies))
	}
	events := make([][]byte, len(bodies))
	for i, b := range bodies {
		events[i] = []byte(b)
	}
	return s.send(events)
}

// eventSender publishes events to a hub for hub send.
type eventSender struct {
	c          *client
	hub        string
	query      url.Values // partitionKey or partition
	properties map[string]string
	messageID  string
}

// send publishes bodies in one request and prints where they were stored.
func (s *eventSender) send(bodies [][]byte) error {
	ctype, body := s.encode(bodies)
	c := s.c
	if s.messageID != "" && ctype != gateway.MediaEnvelope {
		cc := *c
		cc.header = http.Header{gateway.HeaderMessageID: {s.messageID}}
		c = &cc
	}
	var resp gateway.PublishResponse
	raw, err := c.do("POST", "/api/v1/hubs/"+url.PathEscape(s.hub)+"/events", s.query, ctype, body, &resp)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		for _, p := range resp.Events {
			fmt.Fprintf(w, "stored in partition %d at sequence %d\n", p.Partition, p.Sequence)
		}
	})
	return nil
}

// encode makes the request body: JSON bodies as NDJSON; one raw body as it
// is (application/octet-stream: the server refuses text/plain from a
// client without a key, as a web page could send it); otherwise, or with
// properties, the envelope format, where each event says whether its body
// is JSON, text or bytes.
func (s *eventSender) encode(bodies [][]byte) (ctype string, body []byte) {
	allJSON := true
	for _, b := range bodies {
		allJSON = allJSON && json.Valid(b)
	}
	switch {
	case len(s.properties) == 0 && allJSON:
		var buf bytes.Buffer
		for _, b := range bodies {
			_ = json.Compact(&buf, b)
			buf.WriteByte('\n')
		}
		return "application/x-ndjson", buf.Bytes()
	case len(s.properties) == 0 && len(bodies) == 1:
		return "application/octet-stream", bodies[0]
	}
	batch := make([]map[string]any, len(bodies))
	for i, b := range bodies {
		ev := map[string]any{}
		switch {
		case json.Valid(b):
			ev["body"] = json.RawMessage(b)
		case utf8.Valid(b):
			ev["body_text"] = string(b)
		default:
			ev["body_base64"] = base64.StdEncoding.EncodeToString(b)
		}
		if len(s.properties) > 0 {
			ev["properties"] = s.properties
		}
		if s.messageID != "" {
			ev["message_id"] = s.messageID
		}
		batch[i] = ev
	}
	return gateway.MediaEnvelope, jsonBody(batch)
}

// sendLines sends each non-blank line of r as an event, in batches, as the
// lines come in, until r ends: tail -f app.log | sluice hub send logs
// --lines forwards a log as it grows.
func (s *eventSender) sendLines(r io.Reader) error {
	type line struct {
		n    int // 1-based line number
		text []byte
	}
	lines := make(chan line, linesMaxEvents)
	done := make(chan struct{})
	defer close(done)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), gateway.DefaultMaxEventBytes+1)
		n := 0
		for sc.Scan() {
			n++
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			select {
			case lines <- line{n, bytes.Clone(sc.Bytes())}:
			case <-done:
				return
			}
		}
		err := sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes, the most an event can hold", n+1, gateway.DefaultMaxEventBytes)
		} else if err != nil {
			err = fmt.Errorf("read standard input: %w", err)
		}
		readErr <- err
	}()

	var batch [][]byte
	first, last, size := 0, 0, 0
	var linger *time.Timer
	var lingered <-chan time.Time
	flush := func() error {
		if linger != nil {
			linger.Stop()
			linger, lingered = nil, nil
		}
		if len(batch) == 0 {
			return nil
		}
		err := s.send(batch)
		batch, size = nil, 0
		if err != nil {
			return fmt.Errorf("the events of lines %d to %d (the ones before were sent): %w", first, last, err)
		}
		return nil
	}
	sent := 0
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if err := flush(); err != nil {
					return err
				}
				if err := <-readErr; err != nil {
					return err
				}
				if sent == 0 {
					return usagef("no events: standard input has no lines")
				}
				return nil
			}
			if len(batch) > 0 && size+len(l.text) > linesMaxBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			if len(batch) == 0 {
				first = l.n
				linger = time.NewTimer(linesLinger)
				lingered = linger.C
			}
			batch = append(batch, l.text)
			last = l.n
			size += len(l.text)
			sent++
			if len(batch) >= linesMaxEvents {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-lingered:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}
