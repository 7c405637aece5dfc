package handler_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/handler"
)

// The portability check: custom-handler apps written as third parties
// write them (testdata/strictapp, methodapp, blobapp), run end to end in
// both payload modes. Each waits for what its functions write with a
// function of its own on the app, not by polling.

// portableApp writes an app folder: the handler built from testdata/<pkg>,
// host.json, local.settings.json (PAYLOAD_MODE) and the functions'
// function.json files.
func portableApp(t *testing.T, pkg string, mode handler.Mode, functions map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "handler"), "./testdata/"+pkg).CombinedOutput()
	require.NoError(t, err, "build %s: %s", pkg, out)
	files := map[string]string{
		"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}},
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}}`,
		"local.settings.json": fmt.Sprintf(`{"IsEncrypted": false, "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "PAYLOAD_MODE": %q}}`, mode),
	}
	for name, fj := range functions {
		files[filepath.Join(name, "function.json")] = fj
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// startPortable runs an app folder, with the test's own functions
// (declared by also) beside it.
func startPortable(t *testing.T, dir string, mode handler.Mode, also func(app *sluice.App)) *sluice.App {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	fa, err := funcapp.Load(dir, funcapp.Options{Env: map[string]string{}})
	require.NoError(t, err)
	app := sluice.New(sluice.Config{DataDir: filepath.Join(t.TempDir(), "data"), HTTPAddr: "127.0.0.1:0", Logger: log})
	r, err := handler.Prepare(app, fa, handler.AppOptions{Mode: mode, Create: true, Partitions: 1, Logger: log})
	require.NoError(t, err)
	if also != nil {
		also(app)
	}
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(context.Background())) })
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { app.Stop(context.Background()) })
	return app
}

// receive waits for a value, as long as the test may run.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-t.Context().Done():
		t.Fatalf("the test ended before %s", what)
		panic("unreachable")
	}
}

func call(t *testing.T, method, url, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

var modes = []handler.Mode{handler.Compat, handler.Clean}

// TestPortableStrictTypes: a handler that decodes every payload into
// typed structs, unknown fields refused where the shape is fixed, and the
// HTTP metadata's headers as map[string]string.
func TestPortableStrictTypes(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			dir := portableApp(t, "strictapp", mode, map[string]string{
				"order": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["post"], "authLevel": "anonymous", "route": "orders/{id:int}"},
  {"type": "queue", "direction": "out", "name": "orders", "queueName": "orders", "connection": "AzureWebJobsStorage"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
				"consume": `{"bindings": [
  {"type": "queueTrigger", "direction": "in", "name": "order", "queueName": "orders", "connection": "AzureWebJobsStorage"},
  {"type": "queue", "direction": "out", "name": "seen", "queueName": "seen", "connection": "AzureWebJobsStorage"}]}`,
			})
			seen := make(chan []byte, 1)
			app := startPortable(t, dir, mode, func(app *sluice.App) {
				app.Queue(sluice.QueueConfig{Name: "seen"})
				app.QueueFunction("test-seen", sluice.QueueTrigger{Queue: "seen"}, func(ctx context.Context, m *sluice.Message) error {
					seen <- m.Body
					return nil
				})
			})

			status, body := call(t, "POST", app.URL()+"/API/Orders/7/?note=gift", "application/json", `{"sku":"a-1","qty":2}`)
			require.Equal(t, http.StatusCreated, status, body)
			require.Equal(t, "order 7 queued", body)

			var doc struct {
				Error    string
				ID       string
				Kind     string
				Dequeues int
				Order    struct {
					ID  int
					SKU string
					Qty int
				}
			}
			require.NoError(t, json.Unmarshal(receive(t, seen, "the order was consumed"), &doc))
			require.Empty(t, doc.Error, "the handler could not decode the message")
			require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, doc.ID, "the message's Id is a GUID")
			require.Equal(t, 1, doc.Dequeues)
			require.Equal(t, 7, doc.Order.ID)
			require.Equal(t, "a-1", doc.Order.SKU)
			require.Equal(t, 2, doc.Order.Qty)

			status, body = call(t, "POST", app.URL()+"/api/orders/7", "application/json", `{"sku":"a-1","qty":2,"extra":true}`)
			require.Equal(t, http.StatusInternalServerError, status, "the handler's strict decoding refuses unknown fields: %s", body)
		})
	}
}

// TestPortableMethodNameRouting: a handler that serves every function at
// one route and picks it by Metadata.sys.MethodName.
func TestPortableMethodNameRouting(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			dir := portableApp(t, "methodapp", mode, map[string]string{
				"greet": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "greet/{name}"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
				"relay": `{"bindings": [
  {"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "inbox"},
  {"type": "queue", "direction": "out", "name": "out", "queueName": "outbox"}]}`,
			})
			relayed := make(chan []byte, 1)
			app := startPortable(t, dir, mode, func(app *sluice.App) {
				app.QueueFunction("test-out", sluice.QueueTrigger{Queue: "outbox"}, func(ctx context.Context, m *sluice.Message) error {
					relayed <- m.Body
					return nil
				})
			})

			status, body := call(t, "GET", app.URL()+"/api/greet/Ada", "", "")
			require.Equal(t, http.StatusOK, status, body)
			require.Equal(t, "hello Ada from greet", body)
			status, body = call(t, "HEAD", app.URL()+"/api/greet/Ada", "", "")
			require.Equal(t, http.StatusMethodNotAllowed, status, body)

			_, err := app.Send(t.Context(), "inbox", sluice.OutgoingMessage{Body: []byte("quiet please")})
			require.NoError(t, err)
			require.Equal(t, "QUIET PLEASE", string(receive(t, relayed, "the message was relayed")))
		})
	}
}

// TestPortableBlobDataTypes: blobs copied through triggers and outputs of
// every dataType, and read through inputs of every dataType, byte for byte:
// a PNG through "stream" and "binary", text through "string".
func TestPortableBlobDataTypes(t *testing.T) {
	t.Parallel()
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{R: 0xff, A: 0xff})
	var pic bytes.Buffer
	require.NoError(t, png.Encode(&pic, img))
	text := "héllo wörld\n"

	functions := map[string]string{}
	for _, dt := range []string{"string", "binary", "stream"} {
		functions["copy-"+dt] = fmt.Sprintf(`{"bindings": [
  {"type": "blobTrigger", "direction": "in", "name": "blob", "path": "in-%[1]s/{name}", "dataType": %[1]q, "connection": "AzureWebJobsStorage"},
  {"type": "blob", "direction": "out", "name": "copy", "path": "out/{name}.%[1]s", "dataType": %[1]q, "connection": "AzureWebJobsStorage"}]}`, dt)
		functions["read-"+dt] = fmt.Sprintf(`{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "read/%[1]s/{name}"},
  {"type": "blob", "direction": "in", "name": "blob", "path": "out/{name}.%[1]s", "dataType": %[1]q, "connection": "AzureWebJobsStorage"},
  {"type": "http", "direction": "out", "name": "res"}]}`, dt)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			dir := portableApp(t, "blobapp", mode, functions)
			type blobCopy struct {
				name string
				data []byte
			}
			copies := make(chan blobCopy, 3)
			app := startPortable(t, dir, mode, func(app *sluice.App) {
				app.BlobFunction("test-out", sluice.BlobTrigger{Path: "out/{name}"}, func(ctx context.Context, b sluice.Blob) error {
					data, err := b.ReadAll(ctx)
					if err != nil {
						return err
					}
					copies <- blobCopy{name: b.Info.Name, data: data}
					return nil
				})
			})
			sent := map[string][]byte{"note.txt.string": []byte(text), "pic.png.binary": pic.Bytes(), "pic.png.stream": pic.Bytes()}
			for name, data := range sent {
				container, blobName := "in-"+name[strings.LastIndex(name, ".")+1:], name[:strings.LastIndex(name, ".")]
				_, err := app.Blobs().Put(t.Context(), container, blobName, data, "application/octet-stream")
				require.NoError(t, err)
			}
			for range sent {
				b := receive(t, copies, "the blobs were copied")
				want, ok := sent[b.name]
				require.True(t, ok, "unexpected copy %s", b.name)
				require.Equal(t, want, b.data, "%s is copied byte for byte (%.200q)", b.name, b.data)
			}
			for name, data := range sent {
				dt := name[strings.LastIndex(name, ".")+1:]
				status, body := call(t, "GET", app.URL()+"/api/read/"+dt+"/"+strings.TrimSuffix(name, "."+dt), "", "")
				require.Equal(t, http.StatusOK, status, body)
				got, err := base64.StdEncoding.DecodeString(body)
				require.NoError(t, err)
				require.Equal(t, data, got, "%s read through a %s input", name, dt)
				status, body = call(t, "GET", app.URL()+"/api/read/"+dt+"/missing", "", "")
				require.Equal(t, http.StatusNotFound, status, "a blob that does not exist: %s", body)
			}
		})
	}
}
