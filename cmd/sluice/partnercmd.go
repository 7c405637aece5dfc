package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/partner"
)

func partnerCommands() []command {
	return []command{
		{"list", "list the partners: id, name, enabled, tokens", partnerList},
		{"show", "show a partner: its tokens (never their secrets) and the message types it may send", partnerShow},
		{"create", "register a partner", partnerCreate},
		{"enable", "let a disabled partner send again", func(a []string) error { return partnerSetEnabled(a, true) }},
		{"disable", "refuse a partner's messages (403) while keeping it", func(a []string) error { return partnerSetEnabled(a, false) }},
		{"delete", "remove a partner, its tokens and its own message types", partnerDelete},
		{"token", "a partner's tokens: create (printed once), revoke", runPartnerToken},
		{"type", "message types: put (register or replace), list, delete", runPartnerType},
		{"rejections", "the messages of a partner that were refused, newest first, with every reason", partnerRejections},
		{"endpoint", "where a partner receives deliveries: put (with its auth), delete", runPartnerEndpoint},
		{"deliveries", "the retry table: deliveries parked (partner down) or given up; --retry, --cancel", partnerDeliveries},
		{"log", "a partner's delivery log: every attempt, its status and latency, newest first", partnerLog},
		{"send", "send a message as a partner (its token in SLUICE_PARTNER_TOKEN), as partners do", partnerSend},
	}
}

func runPartner(args []string) error {
	return runVerbs("partner", `Manage partners: outside organisations that send messages to
POST /api/v1/partners/PARTNER/messages/TYPE with their own token. Each
message type says how a message is validated (JSON Schema or XSD),
transformed (jq or XSLT 1.0), validated again and routed to a hub. Refused
messages are answered with every problem and kept in the partner's
rejection log.

  sluice partner create acme --name "ACME Corp"
  sluice partner type put order --partner acme --format json --schema order.schema.json \
      --transform order.jq --hub process --partition-key .id
  sluice partner token create acme --name 2026 --expires 8760h
  SLUICE_PARTNER_TOKEN=sluicep_… sluice partner send acme order po.json
  sluice partner rejections acme --since 24h`, partnerCommands(), args)
}

func partnerPath(id string, rest ...string) string {
	p := "/api/v1/partners/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func partnerList(args []string) error {
	fs := flagSet("partner list", "sluice partner list [flags]", `
List the partners: id, name, whether enabled, and how many tokens each holds.`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Partners []partner.Partner `json:"partners"`
	}
	raw, err := c.do("GET", "/api/v1/partners", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		if len(out.Partners) == 0 {
			fmt.Fprintln(stderr, "no partners: register one with sluice partner create")
			return
		}
		fmt.Fprintln(w, "ID\tNAME\tENABLED\tTOKENS\tCREATED")
		for _, p := range out.Partners {
			fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%s\n", p.ID, p.Name, p.Enabled, len(p.Tokens), timeText(p.Created))
		}
	})
	return nil
}

func partnerShow(args []string) error {
	fs := flagSet("partner show", "sluice partner show PARTNER [flags]", `
Show a partner: its tokens (id, name, expiry, last use; never the secrets,
which are not stored) and the message types it may send.`)
	c := clientFlags(fs)
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return err
	}
	var out gateway.PartnerJSON
	raw, err := c.do("GET", partnerPath(id), nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "partner %s (%s), enabled %v, created %s\n\n", out.ID, out.Name, out.Enabled, timeText(out.Created))
		if len(out.Tokens) == 0 {
			fmt.Fprintf(w, "no tokens: make one with sluice partner token create %s\n", out.ID)
		} else {
			fmt.Fprintln(w, "TOKEN\tNAME\tCREATED\tEXPIRES\tLAST USED")
			now := time.Now()
			for _, t := range out.Tokens {
				expires, last := "never", "never"
				if !t.Expires.IsZero() {
					expires = timeText(t.Expires)
					if t.Expired(now) {
						expires += " (expired)"
					}
				}
				if !t.LastUsed.IsZero() {
					last = timeText(t.LastUsed)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, timeText(t.Created), expires, last)
			}
		}
		fmt.Fprintln(w)
		printTypes(w, out.Types)
	})
	return nil
}

func printTypes(w *tabwriter.Writer, types []partner.MessageType) {
	if len(types) == 0 {
		fmt.Fprintln(w, "no message types: register one with sluice partner type put")
		return
	}
	fmt.Fprintln(w, "TYPE\tFORMAT\tSCHEMA\tTRANSFORM\tTARGET\tHUB\tPARTITION KEY")
	yes := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "-"
		}
		return "yes"
	}
	for _, t := range types {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.TypeKey(), t.Format, yes(t.Schema), yes(t.Transform),
			t.TargetFormat+map[bool]string{true: " + schema", false: ""}[strings.TrimSpace(t.TargetSchema) != ""], t.Hub, t.PartitionKey)
	}
}

func partnerCreate(args []string) error {
	fs := flagSet("partner create", "sluice partner create PARTNER [--name NAME] [flags]", `
Register a partner. Its id (lowercase letters, digits, - and _) is part of
its URL: /api/v1/partners/PARTNER/messages/TYPE. It has no token until
sluice partner token create.`)
	c := clientFlags(fs)
	name := fs.String("name", "", "the partner's display name")
	disabled := fs.Bool("disabled", false, "register it disabled (its messages are refused until sluice partner enable)")
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return err
	}
	enabled := !*disabled
	var out partner.Partner
	raw, err := c.do("POST", "/api/v1/partners", nil, "application/json",
		jsonBody(gateway.CreatePartnerRequest{ID: id, Name: *name, Enabled: &enabled}), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "registered partner %s; give it a token with: sluice partner token create %s\n", out.ID, out.ID)
	})
	return nil
}

func partnerSetEnabled(args []string, enabled bool) error {
	verb := map[bool]string{true: "enable", false: "disable"}[enabled]
	fs := flagSet("partner "+verb, "sluice partner "+verb+" PARTNER [flags]", `
Enable or disable a partner. A disabled partner's messages are answered 403
on every instance as soon as it hears of the change; its tokens and types
are kept.`)
	c := clientFlags(fs)
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return err
	}
	var out partner.Partner
	raw, err := c.do("PATCH", partnerPath(id), nil, "application/json", jsonBody(gateway.UpdatePartnerRequest{Enabled: &enabled}), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "partner %s %sd\n", out.ID, verb) })
	return nil
}

func partnerDelete(args []string) error {
	fs := flagSet("partner delete", "sluice partner delete PARTNER [flags]", `
Remove a partner with its tokens and its own message types (shared types
stay). Its rejection log is kept until it expires (30 days).`)
	c := clientFlags(fs)
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return err
	}
	raw, err := c.do("DELETE", partnerPath(id), nil, "", nil, nil)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted partner %s\n", id) })
	return nil
}

func runPartnerToken(args []string) error {
	return runVerbs("partner token", `A partner's tokens. A partner may hold several at once (at most 10), so
that it moves to a new one before the old is revoked.`, []command{
		{"create", "make a token for a partner; it is printed once", partnerTokenCreate},
		{"revoke", "revoke a partner's token by id or name: it stops working at once", partnerTokenRevoke},
	}, args)
}

func partnerTokenCreate(args []string) error {
	fs := flagSet("partner token create", "sluice partner token create PARTNER [--name NAME] [--expires DURATION] [flags]", `
Make a token for a partner. It is printed once and never stored (only its
SHA-256 is): hand it to the partner now. The partner sends it as
'Authorization: Bearer <token>', or in the form field "token".

  sluice partner token create acme --name 2027 --expires 8760h`)
	c := clientFlags(fs)
	name := fs.String("name", "", "a label for the token, such as the year or the system that uses it")
	expires := fs.Duration("expires", 0, "the token stops working this long after creation, e.g. 8760h (default: never)")
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return err
	}
	if *expires < 0 {
		return usagef("--expires %s: give a positive duration", *expires)
	}
	req := gateway.CreateTokenRequest{Name: *name}
	if *expires > 0 {
		req.Expires = expires.String()
	}
	var out gateway.CreateTokenResponse
	raw, err := c.do("POST", partnerPath(id, "tokens"), nil, "application/json", jsonBody(req), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created token %s for partner %s", out.ID, out.Partner)
		if !out.Expires.IsZero() {
			fmt.Fprintf(w, ", expiring %s", out.Expires.Local().Format(time.DateTime))
		}
		fmt.Fprintf(w, "\n\n  %s\n\nThis is the only time the token is shown: hand it to the partner now.\n", out.Secret)
	})
	return nil
}

func partnerTokenRevoke(args []string) error {
	fs := flagSet("partner token revoke", "sluice partner token revoke PARTNER TOKEN [flags]", `
Revoke one of a partner's tokens, by id or name.`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("give the partner and the token's id or name (got %d arguments)", len(pos))
	}
	var out partner.Token
	raw, err := c.do("DELETE", partnerPath(pos[0], "tokens", pos[1]), nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked token %s of partner %s\n", out.ID, pos[0]) })
	return nil
}

func runPartnerType(args []string) error {
	return runVerbs("partner type", `Message types: how a kind of message is validated, transformed and routed.
A type belongs to one partner (--partner) or is shared (without --partner;
--shared-with limits who may send it).`, []command{
		{"put", "register or replace a message type from files", partnerTypePut},
		{"list", "list the message types (of one partner with --partner)", partnerTypeList},
		{"delete", "remove a message type", partnerTypeDelete},
	}, args)
}

func typePath(partnerID, name string) string {
	if partnerID == "" {
		return "/api/v1/message-types/" + url.PathEscape(name)
	}
	return partnerPath(partnerID, "types", name)
}

func partnerTypePut(args []string) error {
	fs := flagSet("partner type put", "sluice partner type put TYPE --format json|xml --hub HUB [flags]", `
Register or replace a message type. Schemas and transforms are read from
files; each is compiled by the server first, and a type that does not
compile is refused with the reason (nothing is stored).

  sluice partner type put order --partner acme --format json \
      --schema order.schema.json --transform order.jq \
      --target-schema canonical.schema.json --hub process --partition-key .id
  sluice partner type put asn --partner globex --format xml --schema asn.xsd \
      --transform asn.xsl --target-format json --hub process`)
	c := clientFlags(fs)
	partnerID := fs.String("partner", "", "the partner that owns the type (default: a shared type)")
	var sharedWith multiFlag
	fs.Var(&sharedWith, "shared-with", "a partner that may send this shared type (repeatable; default: every partner)")
	format := fs.String("format", "", "what partners send: json or xml (required)")
	schema := fs.String("schema", "", "file: JSON Schema (json) or XSD (xml) that messages must satisfy")
	transform := fs.String("transform", "", "file: jq program (json) or XSLT 1.0 stylesheet (xml)")
	targetFormat := fs.String("target-format", "", "what the transform writes: json or xml (default: --format)")
	targetSchema := fs.String("target-schema", "", "file: schema the transformed message must satisfy")
	hubName := fs.String("hub", "", "the hub that receives the messages (required)")
	key := fs.String("partition-key", "", "jq expression (json target) or XPath (xml target) giving each message's partition key (default: the message id)")
	maxBytes := fs.Int64("max-bytes", 0, "largest message accepted, in bytes (default 1 MiB)")
	var nsFlags multiFlag
	fs.Var(&nsFlags, "namespace", "PREFIX=URI: a prefix an XPath --partition-key uses (repeatable)")
	name, err := parseName(fs, args, "message type")
	if err != nil {
		return err
	}
	if *format == "" || *hubName == "" {
		return usagef("give --format json|xml and --hub HUB")
	}
	t := partner.MessageType{Name: name, Partner: *partnerID, Partners: sharedWith, Format: *format,
		TargetFormat: *targetFormat, Hub: *hubName, PartitionKey: *key, MaxBytes: *maxBytes}
	for _, kv := range nsFlags {
		prefix, uri, ok := strings.Cut(kv, "=")
		if !ok || prefix == "" || uri == "" {
			return usagef("--namespace %q: give PREFIX=URI, such as po=urn:acme:po", kv)
		}
		if t.Namespaces == nil {
			t.Namespaces = map[string]string{}
		}
		t.Namespaces[prefix] = uri
	}
	for _, f := range []struct {
		flag, path string
		into       *string
	}{{"schema", *schema, &t.Schema}, {"transform", *transform, &t.Transform}, {"target-schema", *targetSchema, &t.TargetSchema}} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("--%s: %w", f.flag, err)
		}
		*f.into = string(data)
	}
	var out partner.MessageType
	raw, err := c.do("PUT", typePath(*partnerID, name), nil, "application/json", jsonBody(t), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "stored message type %s: %s → %s, to hub %s\n", out.TypeKey(), out.Format, out.TargetFormat, out.Hub)
	})
	return nil
}

func partnerTypeList(args []string) error {
	fs := flagSet("partner type list", "sluice partner type list [--partner PARTNER] [flags]", `
List the message types: all of them, or those one partner may send.`)
	c := clientFlags(fs)
	partnerID := fs.String("partner", "", "only the types this partner may send")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	path := "/api/v1/message-types"
	if *partnerID != "" {
		path = partnerPath(*partnerID, "types")
	}
	var out struct {
		Types []partner.MessageType `json:"types"`
	}
	raw, err := c.do("GET", path, nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { printTypes(w, out.Types) })
	return nil
}

func partnerTypeDelete(args []string) error {
	fs := flagSet("partner type delete", "sluice partner type delete TYPE [--partner PARTNER] [flags]", `
Remove a message type; messages of that type are answered 404 from then on.`)
	c := clientFlags(fs)
	partnerID := fs.String("partner", "", "the partner that owns the type (default: a shared type)")
	name, err := parseName(fs, args, "message type")
	if err != nil {
		return err
	}
	raw, err := c.do("DELETE", typePath(*partnerID, name), nil, "", nil, nil)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted message type %s\n", name) })
	return nil
}

func partnerRejections(args []string) error {
	fs := flagSet("partner rejections", "sluice partner rejections PARTNER [--since 24h] [--limit N] [flags]", `
The partner's refused messages, newest first: when, the type, the message
id, the status, the stage that refused it (parse, schema, transform,
target_schema, partition_key) and every problem with its location. --json
gives the start of each message's body too.`)
	c, id, q, err := logArgs(fs, args)
	if err != nil {
		return err
	}
	var out struct {
		Rejections []partner.RejectionRecord `json:"rejections"`
	}
	raw, err := c.do("GET", partnerPath(id, "rejections"), q, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		if len(out.Rejections) == 0 {
			fmt.Fprintf(stderr, "no rejections of partner %s\n", id)
			return
		}
		for _, r := range out.Rejections {
			fmt.Fprintf(w, "%s  %s  id %s  %d %s\n", timeText(r.Time), r.Type, dash(r.MessageID), r.Status, dash(r.Stage))
			if len(r.Problems) == 0 {
				fmt.Fprintf(w, "    %s\n", r.Error)
			}
			for _, p := range r.Problems {
				fmt.Fprintf(w, "    %s: %s\n", dash(p.Location), p.Reason)
			}
		}
	})
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func partnerSend(args []string) error {
	fs := flagSet("partner send", "sluice partner send PARTNER TYPE FILE... [--message-id ID] [flags]", `
Send messages as the partner does, with the partner's token (from
SLUICE_PARTNER_TOKEN, or --token): to try a message type, or to replay a
partner's files. FILE "-" reads standard input. The answer says where each
message is stored, or every problem found in it.

Several files go in batches (--batch-size per request, to
/api/v1/partners/PARTNER/messages/TYPE/batch); each is accepted or refused
on its own, and the command fails when any is refused. With --ids-from-names
each file's name is its message id, so sending the same files again stores
nothing twice.

  SLUICE_PARTNER_TOKEN=sluicep_… sluice partner send acme po inbox/*.xml --ids-from-names`)
	c := clientFlags(fs)
	token := fs.String("token", os.Getenv("SLUICE_PARTNER_TOKEN"), "the partner's token (env SLUICE_PARTNER_TOKEN; prefer the environment)")
	msgID := fs.String("message-id", "", "the message's id (one FILE): a repeat within the hub's duplicate window is not stored again")
	fromNames := fs.Bool("ids-from-names", false, "each file's name (without its directory) is its message id")
	batchSize := fs.Int("batch-size", 100, "files per request when sending several (1 to 1000)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 3 {
		return usagef("give the partner, the message type and the files (got %d arguments)", len(pos))
	}
	if *token == "" {
		return usagef("give the partner's token in SLUICE_PARTNER_TOKEN")
	}
	files := pos[2:]
	switch {
	case len(files) > 1 && *msgID != "":
		return usagef("--message-id names one message: with several files, use --ids-from-names")
	case len(files) > 1 && slices.Contains(files, "-"):
		return usagef(`"-" (standard input) is one message: send it alone`)
	case *batchSize < 1 || *batchSize > 1000:
		return usagef("--batch-size must be 1 to 1000 (a batch holds at most 1000 messages)")
	}
	// The partner's token, not an API key, authenticates these routes.
	c.key = *token
	if len(files) > 1 {
		return partnerSendBatches(c, pos[0], pos[1], files, *fromNames, *batchSize)
	}
	var body []byte
	if files[0] == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(files[0])
	}
	if err != nil {
		return err
	}
	ct := "application/json"
	if looksXML(body) {
		ct = "application/xml"
	}
	if *fromNames && files[0] != "-" && *msgID == "" {
		*msgID = filepath.Base(files[0])
	}
	if *msgID != "" {
		c.header = map[string][]string{"Message-Id": {*msgID}}
	}
	var out partner.Accepted
	raw, err := c.do("POST", partnerPath(pos[0], "messages", pos[1]), nil, ct, body, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "accepted message %s: hub %s, partition %d, sequence %d\n", out.MessageID, out.Hub, out.Partition, out.Sequence)
	})
	return nil
}

func looksXML(body []byte) bool {
	return strings.HasPrefix(strings.TrimSpace(string(body[:min(len(body), 512)])), "<")
}

// partnerSendBatches sends files as batches and reports each refused one.
func partnerSendBatches(c *client, partnerID, typ string, files []string, fromNames bool, per int) error {
	type fileResult struct {
		File string `json:"file"`
		gateway.PartnerBatchResultJSON
	}
	var all struct {
		Accepted int          `json:"accepted"`
		Rejected int          `json:"rejected"`
		Results  []fileResult `json:"results"`
	}
	for start := 0; start < len(files); start += per {
		part := files[start:min(start+per, len(files))]
		msgs := make([]gateway.PartnerBatchMessageJSON, len(part))
		for i, f := range part {
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("%w (sent before it: %d accepted, %d refused)", err, all.Accepted, all.Rejected)
			}
			m := gateway.PartnerBatchMessageJSON{Body: data}
			switch {
			case looksXML(data):
				// An XML document travels as a JSON string.
				m.Body, _ = json.Marshal(string(data))
			case !json.Valid(data):
				return fmt.Errorf("%s is neither JSON nor XML (it does not start with '<'): fix it or leave it out (sent before it: %d accepted, %d refused)", f, all.Accepted, all.Rejected)
			}
			if fromNames {
				m.MessageID = filepath.Base(f)
			}
			msgs[i] = m
		}
		body, err := json.Marshal(msgs)
		if err != nil {
			return err
		}
		var out gateway.PartnerBatchJSON
		if _, err := c.do("POST", partnerPath(partnerID, "messages", typ, "batch"), nil, "application/json", body, &out); err != nil {
			return fmt.Errorf("%w (sent before this batch: %d accepted, %d refused)", err, all.Accepted, all.Rejected)
		}
		all.Accepted += out.Accepted
		all.Rejected += out.Rejected
		for i, r := range out.Results {
			all.Results = append(all.Results, fileResult{File: part[i], PartnerBatchResultJSON: r})
		}
		if len(files) > per {
			fmt.Fprintf(stderr, "sent %d of %d files\n", start+len(part), len(files))
		}
	}
	raw, _ := json.Marshal(all)
	c.print(raw, func(w *tabwriter.Writer) {
		for _, r := range all.Results {
			if r.Status != http.StatusAccepted {
				fmt.Fprintf(w, "%s\trefused (%d)\t%s\n", r.File, r.Status, r.Error)
				for _, p := range r.Problems {
					fmt.Fprintf(w, "\t\t%s: %s\n", cmpOr(p.Location, "-"), p.Reason)
				}
			}
		}
		fmt.Fprintf(w, "accepted %d of %d messages\n", all.Accepted, len(files))
	})
	if all.Rejected > 0 {
		return fmt.Errorf("%d of %d messages refused (see above, or sluice partner rejections %s)", all.Rejected, len(files), partnerID)
	}
	return nil
}

func runPartnerEndpoint(args []string) error {
	return runVerbs("partner endpoint", `Where a partner receives deliveries (see App.Delivery): a URL, the message
types it takes, and how deliveries authenticate: a bearer token, OAuth2
client credentials, or a Standard Webhooks signature (HMAC-SHA256; give the
new and the old secret during a rotation). Secrets come from the
environment, never from flags, and are never shown back.`, []command{
		{"put", "add or replace an endpoint", partnerEndpointPut},
		{"delete", "remove an endpoint", partnerEndpointDelete},
	}, args)
}

func partnerEndpointPut(args []string) error {
	fs := flagSet("partner endpoint put", "sluice partner endpoint put PARTNER ENDPOINT --url URL [flags]", `
Add or replace an endpoint of a partner. Secrets are read from the
environment: SLUICE_ENDPOINT_TOKEN (--auth bearer), SLUICE_ENDPOINT_CLIENT_SECRET
(--auth oauth2), SLUICE_ENDPOINT_SECRETS (--auth hmac: whsec_ secrets
separated by spaces, the new one first). Replacing an endpoint without
giving its secret again keeps the stored one.

  SLUICE_ENDPOINT_SECRETS=whsec_… sluice partner endpoint put acme main \
      --url https://acme.example.com/hooks --auth hmac --ordered`)
	c := clientFlags(fs)
	u := fs.String("url", "", "the endpoint's URL, http:// or https:// (required)")
	var types multiFlag
	fs.Var(&types, "type", "a message type delivered here (repeatable; default: every type)")
	authKind := fs.String("auth", "", "bearer, oauth2, hmac, or none")
	tokenURL := fs.String("token-url", "", "oauth2: the token endpoint")
	clientID := fs.String("client-id", "", "oauth2: the client id")
	var scopes multiFlag
	fs.Var(&scopes, "scope", "oauth2: a scope to ask for (repeatable)")
	timeout := fs.Duration("timeout", 0, "bound on one POST (default 10s)")
	ratePS := fs.Float64("rate", 0, "at most this many POSTs per second per instance (default: no limit)")
	ordered := fs.Bool("ordered", false, "keep the order of messages with the same partition key")
	maxAttempts := fs.Int("max-attempts", 0, "tries of a parked delivery before it is given up (default 50)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || *u == "" {
		return usagef("give the partner, the endpoint's name and --url")
	}
	ep := partner.Endpoint{Name: pos[1], URL: *u, Types: types, RatePerSecond: *ratePS, Ordered: *ordered, MaxAttempts: *maxAttempts}
	if *timeout > 0 {
		ep.Timeout = timeout.String()
	}
	keep := "(set)" // the stored secret, when none is given
	switch *authKind {
	case "", "none":
	case partner.AuthBearer:
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthBearer, Token: cmpOr(os.Getenv("SLUICE_ENDPOINT_TOKEN"), keep)}
	case partner.AuthOAuth2:
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthOAuth2, TokenURL: *tokenURL, ClientID: *clientID, Scopes: scopes,
			ClientSecret: cmpOr(os.Getenv("SLUICE_ENDPOINT_CLIENT_SECRET"), keep)}
	case partner.AuthHMAC:
		secrets := strings.Fields(os.Getenv("SLUICE_ENDPOINT_SECRETS"))
		if len(secrets) == 0 {
			secrets = []string{keep}
		}
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthHMAC, Secrets: secrets}
	default:
		return usagef("--auth %q: give bearer, oauth2, hmac or none", *authKind)
	}
	var out partner.Endpoint
	raw, err := c.do("PUT", partnerPath(pos[0], "endpoints", pos[1]), nil, "application/json", jsonBody(ep), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "stored endpoint %s of partner %s: %s (auth %s)\n", out.Name, pos[0], out.URL, dash(out.Auth.Kind))
	})
	return nil
}

func partnerEndpointDelete(args []string) error {
	fs := flagSet("partner endpoint delete", "sluice partner endpoint delete PARTNER ENDPOINT [flags]", `
Remove an endpoint. Deliveries parked for it are given up at their next
attempt (sluice partner deliveries shows them).`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("give the partner and the endpoint's name")
	}
	raw, err := c.do("DELETE", partnerPath(pos[0], "endpoints", pos[1]), nil, "", nil, nil)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted endpoint %s of partner %s\n", pos[1], pos[0]) })
	return nil
}

func partnerDeliveries(args []string) error {
	fs := flagSet("partner deliveries", "sluice partner deliveries [--partner P] [--state parked|dead] [--retry | --cancel] [flags]", `
The retry table: deliveries that could not be made when their message came
(the partner was down: parked, tried again with backoff) or that were given
up (refused by the partner, out of attempts: dead). With --retry, the
selected deliveries are tried again now (dead ones with fresh attempts);
with --cancel, they are removed and never delivered.

  sluice partner deliveries --partner acme --state dead
  sluice partner deliveries --partner acme --state dead --retry
  sluice partner deliveries --partner acme --type invoice --since 2h --cancel`)
	c := clientFlags(fs)
	var f gateway.DeliveryFilterJSON
	fs.StringVar(&f.Partner, "partner", "", "only this partner's")
	fs.StringVar(&f.Type, "type", "", "only this message type")
	fs.StringVar(&f.Endpoint, "endpoint", "", "only to this endpoint")
	fs.StringVar(&f.State, "state", "", "parked or dead (default: both)")
	fs.StringVar(&f.Since, "since", "", "parked after this: a duration back from now (2h) or an RFC 3339 time")
	fs.StringVar(&f.Until, "until", "", "parked before this")
	retry := fs.Bool("retry", false, "try the selected deliveries again now")
	cancel := fs.Bool("cancel", false, "remove the selected deliveries: they will not be delivered")
	limit := fs.Int("limit", 100, "list at most this many")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *retry && *cancel {
		return usagef("give --retry or --cancel, not both")
	}
	if *retry || *cancel {
		verb, path := "retried", "/api/v1/deliveries/retry"
		if *cancel {
			verb, path = "cancelled", "/api/v1/deliveries/cancel"
		}
		var out map[string]int
		raw, err := c.do("POST", path, nil, "application/json", jsonBody(f), &out)
		if err != nil {
			return err
		}
		c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s %d deliveries\n", verb, out[verb]) })
		return nil
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	for k, v := range map[string]string{"partner": f.Partner, "type": f.Type, "endpoint": f.Endpoint, "state": f.State, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out gateway.ParkedJSON
	raw, err := c.do("GET", "/api/v1/deliveries", q, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		if out.Count == 0 {
			fmt.Fprintln(stderr, "no parked or given-up deliveries")
			return
		}
		fmt.Fprintln(w, "PARKED\tPARTNER\tENDPOINT\tTYPE\tMESSAGE\tSTATE\tATTEMPTS\tNEXT\tREASON")
		for _, d := range out.Deliveries {
			next := "-"
			if d.State == partner.StateParked {
				next = timeText(d.NextAttempt)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", timeText(d.Created), d.Partner, d.Endpoint, d.Type, d.MessageID,
				d.State, d.Attempts, next, d.Reason)
		}
	})
	return nil
}

func partnerLog(args []string) error {
	fs := flagSet("partner log", "sluice partner log PARTNER [--since 1h] [--limit N] [flags]", `
A partner's delivery log, newest first: every attempt with its outcome
(delivered, retry, refused), the status, the latency and the start of the
answer; deliveries parked without a try say why (breaker open, behind an
earlier delivery of the same key).`)
	c, id, q, err := logArgs(fs, args)
	if err != nil {
		return err
	}
	var out struct {
		Deliveries []partner.DeliveryRecord `json:"deliveries"`
	}
	raw, err := c.do("GET", partnerPath(id, "deliveries"), q, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		if len(out.Deliveries) == 0 {
			fmt.Fprintf(stderr, "no deliveries to partner %s\n", id)
			return
		}
		fmt.Fprintln(w, "TIME\tENDPOINT\tTYPE\tMESSAGE\tTRY\tOUTCOME\tSTATUS\tLATENCY\tDETAIL")
		for _, d := range out.Deliveries {
			detail := d.Error
			if detail == "" {
				detail = d.Reason
			}
			if detail == "" {
				detail = strings.TrimSpace(d.Response)
			}
			outcome := dash(d.Outcome)
			if d.Parked && d.Outcome == "" {
				outcome = "parked"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%.60s\n", timeText(d.Time), d.Endpoint, d.Type, d.MessageID, d.Number,
				outcome, d.Status, d.Latency.Round(time.Microsecond), detail)
		}
	})
	return nil
}

// logArgs adds --since and --limit to fs, parses args for one partner, and
// gives the client and the query that reads its log.
func logArgs(fs *flag.FlagSet, args []string) (*client, string, url.Values, error) {
	c := clientFlags(fs)
	since := fs.String("since", "", "only records after this: a duration back from now (24h) or an RFC 3339 time")
	limit := fs.Int("limit", 20, "at most this many (1-10000)")
	id, err := parseName(fs, args, "partner")
	if err != nil {
		return nil, "", nil, err
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *since != "" {
		q.Set("since", *since)
	}
	return c, id, q, nil
}
