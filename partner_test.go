package sluice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

const poSchema = `{"type": "object", "required": ["orderId", "lines"],
  "properties": {"orderId": {"type": "string"}, "lines": {"type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}}}}}`

func partnerApp(t *testing.T) (*sluice.App, string) {
	t.Helper()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "process", Partitions: 2})
	app.Partner(sluice.PartnerConfig{ID: "acme", Name: "ACME Corp", Types: []sluice.MessageTypeConfig{{
		Name: "order", Format: "json", Schema: poSchema, Hub: "process", PartitionKey: ".id",
		Transform: `{id: .orderId, qty: ([.lines[].qty] | add)}`,
	}}})
	app.MessageType(sluice.MessageTypeConfig{Name: "asn", Format: "xml", Hub: "process", Partners: []string{"acme"}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	token, err := app.PartnerToken(ctx, "acme", "main", 0)
	require.NoError(t, err)
	return app, token
}

// send posts to a partner route and decodes the JSON answer.
func send(t *testing.T, method, url, token, contentType string, body io.Reader, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(data, &out), string(data))
	return resp.StatusCode, out
}

func TestPartnerMessagesOverHTTP(t *testing.T) {
	t.Parallel()
	app, token := partnerApp(t)
	ctx := context.Background()
	base := app.URL() + "/api/v1/partners/acme"
	order := `{"orderId": "PO-7", "lines": [{"qty": 2}, {"qty": 5}]}`

	code, out := send(t, "POST", base+"/messages/order", token, "application/json", strings.NewReader(order), map[string]string{"Message-Id": "po-7"})
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, "po-7", out["message_id"])
	require.Equal(t, "process", out["hub"])

	// The event carries the transformed body and the partner's properties.
	code, read := send(t, "GET", fmt.Sprintf("%s/api/v1/hubs/process/partitions/%v/events", app.URL(), out["partition"]), "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, read)
	events := read["events"].([]any)
	require.Len(t, events, 1)
	ev := events[0].(map[string]any)
	require.JSONEq(t, `{"id": "PO-7", "qty": 7}`, ev["body"].(string))
	props := ev["properties"].(map[string]any)
	require.Equal(t, "acme", props[sluice.PropPartner])
	require.Equal(t, "order", props[sluice.PropMessageType])
	require.Equal(t, "po-7", props[sluice.PropMessageID])
	require.Equal(t, "PO-7", ev["partition_key"])

	// The seed's form: the XML file with the client id and token as fields.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("clientId", "acme"))
	require.NoError(t, mw.WriteField("token", token))
	fw, _ := mw.CreateFormFile("file", "asn.xml")
	_, _ = fw.Write([]byte(`<asn id="9"><line sku="A"/></asn>`))
	require.NoError(t, mw.Close())
	code, out = send(t, "POST", base+"/messages/asn", "", mw.FormDataContentType(), bytes.NewReader(form.Bytes()), nil)
	require.Equal(t, http.StatusAccepted, code, out)

	// The same form naming another client is refused.
	form.Reset()
	mw = multipart.NewWriter(&form)
	_ = mw.WriteField("clientId", "globex")
	_ = mw.WriteField("token", token)
	fw, _ = mw.CreateFormFile("file", "asn.xml")
	_, _ = fw.Write([]byte(`<asn/>`))
	_ = mw.Close()
	code, out = send(t, "POST", base+"/messages/asn", "", mw.FormDataContentType(), bytes.NewReader(form.Bytes()), nil)
	require.Equal(t, http.StatusUnauthorized, code, out)

	// An invalid order: 422 with every problem located; an XXE attempt: 400.
	code, out = send(t, "POST", base+"/messages/order", token, "application/json",
		strings.NewReader(`{"orderId": 7, "lines": [{"qty": 0}, {}]}`), map[string]string{"Message-Id": "bad-1"})
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	require.Equal(t, "schema", out["stage"])
	var locations []string
	for _, p := range out["problems"].([]any) {
		locations = append(locations, p.(map[string]any)["location"].(string))
	}
	require.Subset(t, locations, []string{"/orderId", "/lines/0/qty", "/lines/1"})
	code, out = send(t, "POST", base+"/messages/asn", token, "application/xml",
		strings.NewReader(`<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`), nil)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "DOCTYPE")

	// The partner reads its rejections with its token; staff with the API.
	code, out = send(t, "GET", base+"/messages/rejections", token, "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	recs := out["rejections"].([]any)
	require.Len(t, recs, 2)
	require.Equal(t, "parse", recs[0].(map[string]any)["stage"])
	require.Equal(t, "bad-1", recs[1].(map[string]any)["message_id"])
	code, out = send(t, "GET", base+"/rejections?limit=1&since=1h", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Len(t, out["rejections"].([]any), 1)
	code, _ = send(t, "GET", base+"/messages/rejections", "", "", nil, nil)
	require.Equal(t, http.StatusUnauthorized, code)

	// Nothing refused reached the hub: one order and one notice.
	lag, err := app.Lag(ctx, "process", "")
	require.NoError(t, err)
	require.EqualValues(t, 2, lag)
}

// A batch over HTTP: 202 when every message is accepted; 207 with each
// message's result when some are refused; XML documents as JSON strings;
// refusals of the whole batch store nothing.
func TestPartnerBatchOverHTTP(t *testing.T) {
	t.Parallel()
	app, token := partnerApp(t)
	ctx := context.Background()
	url := app.URL() + "/api/v1/partners/acme/messages/"
	js := "application/json"

	code, out := send(t, "POST", url+"order/batch", token, js, strings.NewReader(`[
		{"message_id": "o-1", "body": {"orderId": "PO-1", "lines": [{"qty": 1}]}},
		{"body": {"orderId": "PO-2", "lines": [{"qty": 2}]}}]`), nil)
	require.Equal(t, http.StatusAccepted, code, out)
	require.EqualValues(t, 2, out["accepted"])
	results := out["results"].([]any)
	first := results[0].(map[string]any)
	require.Equal(t, "o-1", first["message_id"])
	require.EqualValues(t, 202, first["status"])
	require.Contains(t, first, "partition")

	code, out = send(t, "POST", url+"order/batch", token, js, strings.NewReader(`[
		{"message_id": "o-1", "body": {"orderId": "PO-1", "lines": [{"qty": 1}]}},
		{"message_id": "o-3", "body": {"orderId": 3, "lines": []}},
		{"message_id": "o-4", "body": {"orderId": "PO-4", "lines": [{"qty": 4}]}}]`), nil)
	require.Equal(t, http.StatusMultiStatus, code, out)
	require.EqualValues(t, 2, out["accepted"])
	require.EqualValues(t, 1, out["rejected"])
	results = out["results"].([]any)
	again, bad := results[0].(map[string]any), results[1].(map[string]any)
	require.Equal(t, first["sequence"], again["sequence"], "a repeated id is answered with the first position")
	require.EqualValues(t, 422, bad["status"])
	require.Equal(t, "o-3", bad["message_id"])
	require.Equal(t, "schema", bad["stage"])
	require.NotEmpty(t, bad["problems"])

	// An XML type: each document is a JSON string.
	code, out = send(t, "POST", url+"asn/batch", token, js, strings.NewReader(`[{"body": "<asn id=\"1\"/>"}, {"body": "<asn id=\"2\"/>"}]`), nil)
	require.Equal(t, http.StatusAccepted, code, out)

	// Refusals of the whole batch.
	for _, c := range []struct {
		name, url, token, ct, body string
		want                       int
		says                       string
	}{
		{"no token", url + "order/batch", "", js, `[{"body": {}}]`, 401, "token"},
		{"not JSON", url + "order/batch", token, "text/plain", `[{"body": {}}]`, 415, "application/json"},
		{"not an array", url + "order/batch", token, js, `{"body": {}}`, 400, "JSON array"},
		{"a misspelt field", url + "order/batch", token, js, `[{"messageId": "x", "body": {}}]`, 400, "messageId"},
		{"empty", url + "order/batch", token, js, `[]`, 400, "no message"},
		{"XML not a string", url + "asn/batch", token, js, `[{"body": {"asn": 1}}]`, 400, "JSON string"},
		{"unknown type", url + "invoice/batch", token, js, `[{"body": {}}]`, 404, "invoice"},
	} {
		code, out := send(t, "POST", c.url, c.token, c.ct, strings.NewReader(c.body), nil)
		require.Equal(t, c.want, code, "%s: %v", c.name, out)
		require.Contains(t, out["error"], c.says, c.name)
	}
	many := "[" + strings.Repeat(`{"body": {}},`, 1000) + `{"body": {}}]`
	code, out = send(t, "POST", url+"order/batch", token, js, strings.NewReader(many), nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, out)
	require.Contains(t, out["error"], "in parts")

	lag, err := app.Lag(ctx, "process", "")
	require.NoError(t, err)
	require.EqualValues(t, 5, lag, "PO-1, PO-2, PO-4 and two notices")
}

func TestPartnerRegistryOverHTTP(t *testing.T) {
	t.Parallel()
	app, acmeToken := partnerApp(t)
	api := app.URL() + "/api/v1"
	js := "application/json"

	code, out := send(t, "POST", api+"/partners", "", js, strings.NewReader(`{"id": "globex", "name": "Globex"}`), nil)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, true, out["enabled"])
	code, out = send(t, "POST", api+"/partners", "", js, strings.NewReader(`{"id": "Globex Inc"}`), nil)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "lowercase")

	// A type whose transform does not compile is refused, and not stored.
	code, out = send(t, "PUT", api+"/partners/globex/types/invoice", "", js,
		strings.NewReader(`{"format": "json", "hub": "process", "transform": ".a | {"}`), nil)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "jq")
	code, out = send(t, "PUT", api+"/partners/globex/types/invoice", "", js,
		strings.NewReader(`{"format": "json", "hub": "process", "partition_key": ".n"}`), nil)
	require.Equal(t, http.StatusOK, code, out)

	// A token, shown once; the partner sends; the token is revoked.
	code, out = send(t, "POST", api+"/partners/globex/tokens", "", js, strings.NewReader(`{"name": "2026", "expires": "2160h"}`), nil)
	require.Equal(t, http.StatusCreated, code, out)
	token, tokenID := out["token"].(string), out["id"].(string)
	require.True(t, strings.HasPrefix(token, "sluicep_"), token)
	code, out = send(t, "POST", api+"/partners/globex/messages/invoice", token, js, strings.NewReader(`{"n": 1}`), nil)
	require.Equal(t, http.StatusAccepted, code, out)
	code, out = send(t, "GET", api+"/partners/globex", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Len(t, out["tokens"].([]any), 1)
	require.NotContains(t, out["tokens"].([]any)[0], "hash")
	require.Len(t, out["types"].([]any), 1)
	code, out = send(t, "DELETE", api+"/partners/globex/tokens/"+tokenID, "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	code, out = send(t, "POST", api+"/partners/globex/messages/invoice", token, js, strings.NewReader(`{"n": 1}`), nil)
	require.Equal(t, http.StatusUnauthorized, code, out)

	// Disabled: 403 even with a good token.
	code, out = send(t, "POST", api+"/partners/globex/tokens", "", js, strings.NewReader(`{}`), nil)
	require.Equal(t, http.StatusCreated, code, out)
	token = out["token"].(string)
	code, out = send(t, "PATCH", api+"/partners/globex", "", js, strings.NewReader(`{"enabled": false}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	code, out = send(t, "POST", api+"/partners/globex/messages/invoice", token, js, strings.NewReader(`{"n": 1}`), nil)
	require.Equal(t, http.StatusForbidden, code, out)

	// A type routed to a hub that does not exist: 503, the operator's to fix.
	code, out = send(t, "PUT", api+"/message-types/orphan", "", js, strings.NewReader(`{"format": "json", "hub": "nohub"}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	code, out = send(t, "POST", api+"/partners/acme/messages/orphan", acmeToken, js, strings.NewReader(`{}`), nil)
	require.Equal(t, http.StatusServiceUnavailable, code, out)
	require.Contains(t, out["error"], "nohub")
	code, out = send(t, "GET", api+"/message-types", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Len(t, out["types"].([]any), 4) // acme/order, asn, globex/invoice, orphan

	// Deleting a partner deletes its own types, not the shared ones.
	code, out = send(t, "DELETE", api+"/partners/globex", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	code, out = send(t, "GET", api+"/message-types", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Len(t, out["types"].([]any), 3)
	code, out = send(t, "GET", api+"/partners/globex", "", "", nil, nil)
	require.Equal(t, http.StatusNotFound, code, out)
}
