package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/partner"
)

func TestPartnerCommands(t *testing.T) {
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Hub(sluice.HubConfig{Name: "process", Partitions: 2})
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	srv := "http://" + app.Addr()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return sluiceCmd(t, append(args, "--server", srv)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}

	require.Contains(t, ok("partner", "create", "acme", "--name", "ACME Corp"), "registered partner acme")
	schema := file("order.schema.json", `{"type": "object", "required": ["orderId"], "properties": {"orderId": {"type": "string"}}}`)
	jq := file("order.jq", `{id: .orderId}`)
	require.Contains(t, ok("partner", "type", "put", "order", "--partner", "acme", "--format", "json",
		"--schema", schema, "--transform", jq, "--hub", "process", "--partition-key", ".id"), "stored message type acme/order: json → json, to hub process")
	require.Regexp(t, `acme/order +json +yes +yes +json +process +\.id`, ok("partner", "type", "list"))

	// A transform that does not compile is refused, with the reason.
	bad := file("bad.jq", `.a | {`)
	code, _, errOut := run("partner", "type", "put", "broken", "--partner", "acme", "--format", "json", "--transform", bad, "--hub", "process")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not a jq program")

	// An endpoint with a signing secret from the environment, never shown.
	t.Setenv("SLUICE_ENDPOINT_SECRETS", "whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	require.Contains(t, ok("partner", "endpoint", "put", "acme", "main", "--url", "http://127.0.0.1:9/hooks", "--auth", "hmac", "--ordered"),
		"stored endpoint main of partner acme: http://127.0.0.1:9/hooks (auth hmac)")
	code, _, errOut = run("partner", "endpoint", "put", "acme", "bad", "--url", "ftp://example.com/x")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "http:// or https://")
	shown := ok("partner", "show", "acme", "--json")
	require.Regexp(t, `"secrets": \[\s*"\(set\)"\s*\]`, shown)
	require.NotContains(t, shown, "whsec_")
	code, _, errOut = run("partner", "deliveries", "--partner", "acme")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "no parked or given-up deliveries")
	code, _, errOut = run("partner", "deliveries", "--retry", "--cancel")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "not both")
	code, _, errOut = run("partner", "log", "acme")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "no deliveries to partner acme")

	out := ok("partner", "token", "create", "acme", "--name", "2026", "--expires", "24h")
	token := regexp.MustCompile(`sluicep_[0-9a-f]{12}_[0-9a-f]{64}`).FindString(out)
	require.NotEmpty(t, token, out)
	require.Contains(t, out, "only time the token is shown")

	t.Setenv("SLUICE_PARTNER_TOKEN", token)
	msg := file("po.json", `{"orderId": "PO-1"}`)
	require.Regexp(t, `accepted message m-1: hub process, partition \d, sequence \d+`, ok("partner", "send", "acme", "order", msg, "--message-id", "m-1"))
	badMsg := file("bad.json", `{"orderId": 1}`)
	code, _, errOut = run("partner", "send", "acme", "order", badMsg, "--message-id", "m-2")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "/orderId")

	rej := ok("partner", "rejections", "acme", "--since", "1h")
	require.Contains(t, rej, "order  id m-2  422 schema")
	require.Contains(t, rej, "/orderId: ")
	var recs struct{ Rejections []partner.RejectionRecord }
	require.NoError(t, json.Unmarshal([]byte(ok("partner", "rejections", "acme", "--json")), &recs))
	require.Len(t, recs.Rejections, 1)
	require.Equal(t, `{"orderId": 1}`, recs.Rejections[0].Body)

	// Several files go in batches; each is accepted or refused on its own.
	files := []string{file("po-2.json", `{"orderId": "PO-2"}`), file("po-3.json", `{"orderId": 3}`), file("po-4.json", `{"orderId": "PO-4"}`)}
	code, out, errOut = run(append([]string{"partner", "send", "acme", "order", "--ids-from-names", "--batch-size", "2"}, files...)...)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, out, "po-3.json  refused (422)")
	require.Contains(t, out, "accepted 2 of 3 messages")
	require.Contains(t, errOut, "sent 2 of 3 files")
	require.Contains(t, errOut, "1 of 3 messages refused")
	var sent struct {
		Accepted int
		Results  []struct {
			File      string
			MessageID string `json:"message_id"`
			Sequence  int64
		}
	}
	code, out, _ = run("partner", "send", "acme", "order", "--ids-from-names", "--json", files[0], files[2])
	require.Equal(t, 0, code, out)
	require.NoError(t, json.Unmarshal([]byte(out), &sent))
	require.Equal(t, 2, sent.Accepted)
	require.Equal(t, "po-2.json", sent.Results[0].MessageID)
	require.Equal(t, files[2], sent.Results[1].File)
	code, _, errOut = run("partner", "send", "acme", "order", "--message-id", "x", files[0], files[2])
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--ids-from-names")
	code, _, errOut = run("partner", "send", "acme", "order", files[0], file("notes.txt", "hello"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "neither JSON nor XML")

	show := ok("partner", "show", "acme")
	require.Contains(t, show, "partner acme (ACME Corp), enabled true")
	require.Regexp(t, `[0-9a-f]{12} +2026 `, show)
	var p gateway.PartnerJSON
	require.NoError(t, json.Unmarshal([]byte(ok("partner", "show", "acme", "--json")), &p))
	require.Len(t, p.Tokens, 1)

	ok("partner", "disable", "acme")
	code, _, errOut = run("partner", "send", "acme", "order", msg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "disabled")
	ok("partner", "enable", "acme")
	require.Contains(t, ok("partner", "token", "revoke", "acme", "2026"), "revoked token")
	code, _, errOut = run("partner", "send", "acme", "order", msg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "revoked")

	require.Regexp(t, `acme +ACME Corp +true +0`, ok("partner", "list"))
	ok("partner", "delete", "acme")
	code, _, errOut = run("partner", "show", "acme")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not found")

	code, _, errOut = run("partner", "send", "acme", "order")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give the partner, the message type and the file")
	code, out, _ = run("partner", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "rejection log")
}
