package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/gateway"
)

func docsCommands() []command {
	return []command{
		{"container", "manage containers: create, list, delete", runDocsContainer},
		{"get", "print a document", docsGet},
		{"put", "store a document, or an array of documents, from a file or standard input", docsPut},
		{"delete", "delete a document", docsDelete},
		{"query", "print the documents that match a query", docsQuery},
		{"feed", "print a container's changes in order (--follow to keep going)", docsFeed},
	}
}

func runDocs(args []string) error {
	return runVerbs("docs", `Store and query JSON documents. Documents live in containers; each has an
"id" and a partition key, its value at the container's partition key path
(like /deviceId). Every write gets the next LSN of its container and a new
ETag; the change feed lists the writes in LSN order.`, docsCommands(), args)
}

func containerCommands() []command {
	return []command{
		{"create", "create a container", containerCreate},
		{"list", "list containers", containerList},
		{"delete", "delete a container and all its documents", containerDelete},
	}
}

func runDocsContainer(args []string) error {
	return runVerbs("docs container", "Manage document containers.", containerCommands(), args)
}

func containerPath(name string, rest ...string) string {
	return "/api/v1/containers/" + url.PathEscape(name) + strings.Join(rest, "")
}

func documentPath(container, pk, id string) string {
	return containerPath(container, "/docs/", pathSegment(pk), "/", pathSegment(id))
}

// pathSegment escapes s as one path segment. "." and ".." are escaped too:
// as they are, they would be resolved away.
func pathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// withIfMatch returns a copy of c that sends If-Match: etag (quoted if it
// is not).
func (c *client) withIfMatch(etag string) *client {
	if !strings.Contains(etag, `"`) {
		etag = `"` + etag + `"`
	}
	cc := *c
	cc.header = http.Header{"If-Match": {etag}}
	return &cc
}

// ttlKept says how long a container keeps its documents.
func ttlKept(ttl string) string {
	if ttl == "" {
		return "until deleted"
	}
	return ttl
}

func containerCreate(args []string) error {
	fs := flagSet("docs container create", "sluice docs container create NAME --partition-key PATH [flags]", `
Create a container. Each document's partition key is its value at the
partition key path; it cannot change later. Documents of one partition are
read and queried together cheaply.

Examples:
  sluice docs container create devices --partition-key /deviceId
  sluice docs container create sessions --partition-key /user/id --ttl 24h`)
	c := clientFlags(fs)
	pkPath := fs.String("partition-key", "", "path of each document's partition key, like /deviceId (required)")
	ttl := fs.Duration("ttl", 0, "remove documents this long after their last write (0: keep them)")
	name, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	if *pkPath == "" {
		return usagef("give --partition-key, the path of each document's partition key, like /deviceId")
	}
	req := gateway.CreateContainerRequest{Name: name, PartitionKeyPath: *pkPath}
	if *ttl != 0 {
		req.DefaultTTL = ttl.String()
	}
	var out gateway.ContainerJSON
	raw, err := c.do("POST", "/api/v1/containers", nil, "application/json", jsonBody(req), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created container %s: partition key %s, documents kept %s\n", out.Name, out.PartitionKeyPath, ttlKept(out.DefaultTTL))
	})
	return nil
}

func containerList(args []string) error {
	fs := flagSet("docs container list", "sluice docs container list [flags]", `
List containers with their partition key paths and how long they keep
documents.

Examples:
  sluice docs container list
  sluice docs container list --json | jq -r '.containers[].name'`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct{ Containers []gateway.ContainerJSON }
	raw, err := c.do("GET", "/api/v1/containers", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tPARTITION KEY\tKEPT\tCREATED")
		for _, ct := range out.Containers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ct.Name, ct.PartitionKeyPath, ttlKept(ct.DefaultTTL), ct.Created.Local().Format(time.DateTime))
		}
	})
	return nil
}

func containerDelete(args []string) error {
	fs := flagSet("docs container delete", "sluice docs container delete NAME --yes [flags]", `
Delete a container with all its documents and its change feed.

Example:
  sluice docs container delete devices --yes`)
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: the documents cannot be recovered")
	name, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("deleting container %s destroys its documents; add --yes to confirm", name)
	}
	if _, err := c.do("DELETE", containerPath(name), nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"deleted": name}), '\n'), func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted container %s\n", name) })
	return nil
}

// docArgs parses flags and the positional arguments CONTAINER PK ID.
func docArgs(fs *flag.FlagSet, args []string) (container, pk, id string, err error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", "", "", err
	}
	if len(pos) != 3 {
		return "", "", "", usagef("give the container, the document's partition key and its id (got %d arguments)", len(pos))
	}
	return pos[0], pos[1], pos[2], nil
}

func docsGet(args []string) error {
	fs := flagSet("docs get", "sluice docs get CONTAINER PARTITION_KEY ID [flags]", `
Print a document with its system fields: _etag (for put --if-match and
delete --if-match), _ts (the last write, in Unix seconds) and _lsn.

Examples:
  sluice docs get devices dev-1 reading-42
  sluice docs get devices dev-1 reading-42 --json | jq -r ._etag`)
	c := clientFlags(fs)
	container, pk, id, err := docArgs(fs, args)
	if err != nil {
		return err
	}
	raw, err := c.do("GET", documentPath(container, pk, id), nil, "", nil, nil)
	if err != nil {
		return err
	}
	if c.json {
		stdout.Write(append(raw, '\n'))
		return nil
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	fmt.Fprintln(stdout, pretty.String())
	return nil
}

func docsPut(args []string) error {
	fs := flagSet("docs put", "sluice docs put CONTAINER [FILE | -] [flags]", `
Store the document in FILE, or on standard input ('-', or no FILE when
standard input is not a terminal). The document is a JSON object with an
"id" and its partition key; it replaces a stored one with the same id and
partition key (upsert), unless --create or --if-match says otherwise.
A JSON array of documents is stored all together, or none of them.

Examples:
  sluice docs put devices reading.json
  echo '{"id":"r1","deviceId":"dev-1","battery":17}' | sluice docs put devices
  sluice docs put devices reading.json --create            # fail if it exists
  sluice docs put devices reading.json --if-match '"2f"'   # only over that version
  sluice docs put devices seed.json                         # [{...}, {...}]`)
	c := clientFlags(fs)
	create := fs.Bool("create", false, "fail if the document exists")
	etag := fs.String("if-match", "", "replace the document only if its ETag (its _etag) is this one")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("give the container and, optionally, the file with the document (got %d arguments)", len(pos))
	}
	container := pos[0]
	if *create && *etag != "" {
		return usagef("--create and --if-match exclude each other: --create stores a new document, --if-match replaces an existing one")
	}
	doc, source, err := readDocInput(pos[1:])
	if err != nil {
		return err
	}
	if b := bytes.TrimLeft(doc, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		if *create || *etag != "" {
			return usagef("%s holds an array: --create and --if-match apply to one document", source)
		}
		return c.putBulk(container, doc)
	}
	method, path, verb := "PUT", containerPath(container, "/docs"), "stored"
	switch {
	case *create:
		method, verb = "POST", "created"
	case *etag != "":
		// The path names the document: find its id and partition key.
		var ct gateway.ContainerJSON
		if _, err := c.do("GET", containerPath(container), nil, "", nil, &ct); err != nil {
			return err
		}
		p, err := docstore.Prepare(docstore.Container{Name: ct.Name, PartitionKeyPath: ct.PartitionKeyPath}, doc, docstore.DefaultMaxDocumentBytes)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		path, verb = documentPath(container, p.PartitionKey, p.ID), "replaced"
		c = c.withIfMatch(*etag)
	}
	var d docstore.Document
	raw, err := c.do(method, path, nil, "application/json", doc, &d)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s document %s in partition %s of container %s: etag %s, lsn %d\n", verb, d.ID, d.PartitionKey, container, d.ETag, d.LSN)
	})
	return nil
}

// readDocInput reads the document of put from the file named by args, or
// from standard input; source names it in errors.
func readDocInput(args []string) (doc []byte, source string, err error) {
	if len(args) == 1 && args[0] != "-" {
		doc, err := os.ReadFile(args[0])
		if err != nil {
			return nil, "", fmt.Errorf("read the document: %w", err)
		}
		return doc, args[0], nil
	}
	if f, ok := stdin.(*os.File); ok && len(args) == 0 && isTerminal(f) {
		return nil, "", usagef("no document: give a FILE, or pipe the document on standard input")
	}
	doc, err = io.ReadAll(stdin)
	if err != nil {
		return nil, "", fmt.Errorf("read standard input: %w", err)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, "", usagef("no document: standard input is empty")
	}
	return doc, "standard input", nil
}

func (c *client) putBulk(container string, array []byte) error {
	var docs []json.RawMessage
	if err := json.Unmarshal(array, &docs); err != nil {
		return fmt.Errorf("the documents are not a valid JSON array: %w", err)
	}
	var out gateway.BulkResponse
	raw, err := c.do("POST", containerPath(container, "/docs/bulk"), nil, "application/json", jsonBody(gateway.BulkRequest{Documents: docs}), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "stored %d documents in container %s", out.Count, container)
		if n := len(out.Documents); n > 0 {
			fmt.Fprintf(w, ": lsn %d to %d", out.Documents[0].LSN, out.Documents[n-1].LSN)
		}
		fmt.Fprintln(w)
	})
	return nil
}

func docsDelete(args []string) error {
	fs := flagSet("docs delete", "sluice docs delete CONTAINER PARTITION_KEY ID [flags]", `
Delete a document. The change feed keeps a tombstone of it for a while, so
that readers of the feed learn of the delete.

Examples:
  sluice docs delete devices dev-1 reading-42
  sluice docs delete devices dev-1 reading-42 --if-match '"2f"'`)
	c := clientFlags(fs)
	etag := fs.String("if-match", "", "delete the document only if its ETag (its _etag) is this one")
	container, pk, id, err := docArgs(fs, args)
	if err != nil {
		return err
	}
	if *etag != "" {
		c = c.withIfMatch(*etag)
	}
	if _, err := c.do("DELETE", documentPath(container, pk, id), nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"container": container, "partition_key": pk, "deleted": id}), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "deleted document %s in partition %s of container %s\n", id, pk, container)
	})
	return nil
}

func docsQuery(args []string) error {
	fs := flagSet("docs query", "sluice docs query CONTAINER [QUERY] [flags]", `
Print the documents that match a query, one per line. A query is a
condition on the document, "c" standing for it, or a whole
SELECT * FROM c [WHERE ...] [ORDER BY ...] [LIMIT n]; no query prints
every document. Results come in pages: --all fetches every page.
--json prints the API's answer for each page. Notes, such as how to get
the next page, go to standard error: standard output holds only documents.

Examples:
  sluice docs query devices 'c.battery < 20'
  sluice docs query devices 'c.mode IN ("flight", "sleep") AND NOT EXISTS(c.alert)' --partition-key dev-1
  sluice docs query devices 'SELECT * FROM c ORDER BY c._ts DESC' --max 10
  sluice docs query devices --all --json | jq -c '.documents[].body'`)
	c := clientFlags(fs)
	pk := fs.String("partition-key", "", "only documents of this partition")
	maxItems := fs.Int("max", 100, "documents per page (1-1000)")
	all := fs.Bool("all", false, "fetch every page, following continuations")
	cont := fs.String("continuation", "", "resume after a previous page (its continuation)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("give the container and, optionally, one query (quote it; got %d arguments)", len(pos))
	}
	container := pos[0]
	req := docstore.QueryRequest{MaxItems: *maxItems, Continuation: *cont}
	if len(pos) == 2 {
		req.Text = pos[1]
	}
	if isSet(fs, "partition-key") {
		req.PartitionKey = pk
	}
	printed := 0
	for {
		var page docstore.Page
		raw, err := c.do("POST", containerPath(container, "/query"), nil, "application/json", jsonBody(req), &page)
		if err != nil {
			return err
		}
		if c.json {
			stdout.Write(raw)
		} else {
			for _, d := range page.Documents {
				fmt.Fprintln(stdout, compactJSON(d.Body))
			}
		}
		printed += len(page.Documents)
		if page.Continuation == "" {
			break
		}
		if !*all {
			// A hint, not data: on standard error, so that standard
			// output can go to jq.
			fmt.Fprintf(stderr, "more results: add --all, or --continuation %s\n", page.Continuation)
			return nil
		}
		req.Continuation = page.Continuation
	}
	if printed == 0 && !c.json {
		fmt.Fprintf(stderr, "no documents match in container %s\n", container)
	}
	return nil
}

// isSet reports whether the flag name was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// compactJSON is JSON text on one line.
func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// interruptContext is done when the user interrupts the command (Ctrl-C
// or SIGTERM); tests replace it.
var interruptContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// feedPollWait is how long one request of feed --follow waits for a change.
const feedPollWait = 25 * time.Second

func docsFeed(args []string) error {
	fs := flagSet("docs feed", "sluice docs feed CONTAINER [flags]", `
Print a container's changes in the order they were written, one per line:
its LSN, the write time, the partition key, the id, and the document (or
"deleted"). A document written several times shows once, as it is now.
Without --follow the command stops when it has printed --limit changes or
caught up, and says on standard error where to resume (--after); with
--follow it keeps waiting for changes until interrupted. --json prints
each change as one JSON object per line; its "lsn" is where to resume
after it.

Examples:
  sluice docs feed devices
  sluice docs feed devices --from now --follow
  sluice docs feed devices --from 15m               # the changes of the last 15 minutes
  sluice docs feed devices --after 1042 --limit 1000 --json`)
	c := clientFlags(fs)
	from := fs.String("from", "start", "where to begin: start, now, an RFC 3339 time, or a duration ago like 15m")
	after := fs.Int64("after", 0, "begin after this LSN (where a previous read stopped)")
	limit := fs.Int("limit", 100, "stop after this many changes (without --follow)")
	follow := fs.Bool("follow", false, "keep waiting for changes until interrupted")
	container, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	if isSet(fs, "after") && isSet(fs, "from") {
		return usagef("give --after (where a previous read stopped) or --from (where to begin), not both")
	}
	if *after < 0 {
		return usagef("--after %d: give an LSN, 0 or more", *after)
	}
	if *limit < 1 {
		return usagef("--limit %d: give 1 or more", *limit)
	}
	start := url.Values{"after": {strconv.FormatInt(*after, 10)}}
	if !isSet(fs, "after") {
		f, err := feedFrom(*from)
		if err != nil {
			return err
		}
		start = url.Values{"from": {f}}
	}
	ctx, stop := interruptContext()
	defer stop()
	cc := *c
	cc.ctx = ctx
	c = &cc

	enc := json.NewEncoder(stdout)
	printed, resume := 0, *after
	for {
		q := url.Values{"limit": {strconv.Itoa(maxFeedLimit(*follow, *limit-printed))}}
		for k, v := range start {
			q[k] = v
		}
		if *follow {
			q.Set("wait", feedPollWait.String())
		}
		var out gateway.FeedResponse
		_, err := c.do("GET", containerPath(container, "/feed"), q, "", nil, &out)
		if ctx.Err() != nil {
			break // interrupted
		}
		if err != nil {
			return err
		}
		for _, d := range out.Changes {
			if c.json {
				d.Body = json.RawMessage(compactJSON(d.Body))
				_ = enc.Encode(d)
				continue
			}
			what := "deleted"
			if !d.Deleted {
				what = compactJSON(d.Body)
			}
			fmt.Fprintf(stdout, "%d  %s  %s  %s  %s\n", d.LSN, d.TS.Local().Format("2006-01-02 15:04:05.000"), d.PartitionKey, d.ID, what)
		}
		printed += len(out.Changes)
		resume = out.Continuation
		start = url.Values{"after": {strconv.FormatInt(resume, 10)}}
		if !*follow && (len(out.Changes) == 0 || printed >= *limit) {
			break
		}
	}
	fmt.Fprintf(stderr, "%d changes; continue after lsn %d with --after %d\n", printed, resume, resume)
	return nil
}

// maxFeedLimit is the limit of one feed request: what is left to print,
// at most the API's 1000.
func maxFeedLimit(follow bool, left int) int {
	if follow {
		return 1000
	}
	return min(left, 1000)
}

// feedFrom turns --from into the API's from: start, now, or an RFC 3339
// time.
func feedFrom(from string) (string, error) {
	if from == "start" || from == "now" {
		return from, nil
	}
	if d, err := time.ParseDuration(from); err == nil && d >= 0 {
		return time.Now().Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	if _, err := time.Parse(time.RFC3339Nano, from); err == nil {
		return from, nil
	}
	return "", usagef("--from %q: use start, now, an RFC 3339 time like 2026-01-02T15:04:05Z, or a duration ago like 15m", from)
}
