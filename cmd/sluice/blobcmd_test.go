package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
)

func TestBlobCommands(t *testing.T) {
	srv := startInstance(t)
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := sluiceCmd(t, append(args, "--server", srv)...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	okJSON := func(out any, args ...string) {
		t.Helper()
		raw := ok(append(args, "--json")...)
		require.NoError(t, json.Unmarshal([]byte(raw), out), "sluice %v printed %s", args, raw)
	}
	dir := t.TempDir()

	require.Equal(t, "created blob container staging\n", ok("blob", "container", "create", "staging"))
	var created gateway.BlobContainerJSON
	okJSON(&created, "blob", "container", "create", "archive")
	require.Equal(t, "archive", created.Name)
	require.Contains(t, ok("blob", "container", "list"), "staging")
	var containers struct{ Containers []gateway.BlobContainerJSON }
	okJSON(&containers, "blob", "container", "list")
	require.Len(t, containers.Containers, 2)

	// Put from a file (content type guessed from the name), from standard
	// input, with metadata.
	changes := filepath.Join(dir, "changes.json")
	require.NoError(t, os.WriteFile(changes, []byte(`[{"op":"insert"}]`), 0o644))
	out := ok("blob", "put", "staging", "incoming/2026/11/changes.json", changes, "--meta", "source=cdc", "--meta", "Rows=1")
	require.Contains(t, out, "stored blob incoming/2026/11/changes.json in container staging: 17 bytes, application/json, etag ")
	big := make([]byte, 1<<20+7)
	_, _ = rand.Read(big)
	withInput(t, string(big))
	var bigInfo gateway.BlobJSON
	okJSON(&bigInfo, "blob", "put", "staging", "dumps/db #1.bin", "-", "--content-type", "application/x-dump")
	require.Equal(t, int64(len(big)), bigInfo.Size)
	require.Equal(t, "application/x-dump", bigInfo.ContentType)
	require.Equal(t, "dumps/db #1.bin", bigInfo.Name)

	// Get to standard output and to a file.
	require.Equal(t, `[{"op":"insert"}]`, ok("blob", "get", "staging", "incoming/2026/11/changes.json"))
	file := filepath.Join(dir, "db.bin")
	require.Contains(t, ok("blob", "get", "staging", "dumps/db #1.bin", "-o", file), "wrote 1048583 bytes of blob dumps/db #1.bin (etag "+bigInfo.ETag+")")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))
	var fromGet gateway.BlobJSON
	okJSON(&fromGet, "blob", "get", "staging", "dumps/db #1.bin", "-o", file)
	require.Equal(t, bigInfo.ETag, fromGet.ETag)
	require.Equal(t, bigInfo.Digest, fromGet.Digest)

	// Stat.
	stat := ok("blob", "stat", "staging", "incoming/2026/11/changes.json")
	require.Contains(t, stat, "size          17 bytes")
	require.Contains(t, stat, "meta rows     1")
	require.Contains(t, stat, "meta source   cdc")
	var info gateway.BlobJSON
	okJSON(&info, "blob", "stat", "staging", "incoming/2026/11/changes.json")
	require.Equal(t, map[string]string{"source": "cdc", "rows": "1"}, info.Metadata)
	require.Equal(t, "application/json", info.ContentType)
	require.Equal(t, int64(17), info.Size)
	require.False(t, info.Modified.IsZero())

	// List, with a prefix.
	list := ok("blob", "list", "staging")
	require.Contains(t, list, "NAME")
	require.Less(t, strings.Index(list, "dumps/db #1.bin"), strings.Index(list, "incoming/2026/11/changes.json"), "by name")
	var listed gateway.BlobListResponse
	okJSON(&listed, "blob", "list", "staging", "--prefix", "incoming/")
	require.Len(t, listed.Blobs, 1)
	require.Equal(t, info.ETag, listed.Blobs[0].ETag)
	noBlobs := func(want string, args ...string) {
		t.Helper()
		out, errOut := runOK(t, srv, args...)
		require.Empty(t, out)
		require.Equal(t, want, errOut)
	}
	noBlobs("no blobs in container staging starting with nothing/\n", "blob", "list", "staging", "--prefix", "nothing/")
	noBlobs("no blobs in container archive\n", "blob", "list", "archive")

	// Overwrite, then delete.
	require.NoError(t, os.WriteFile(changes, []byte(`[]`), 0o644))
	require.NotContains(t, ok("blob", "put", "staging", "incoming/2026/11/changes.json", changes), info.ETag)
	require.Equal(t, "deleted blob incoming/2026/11/changes.json from container staging\n", ok("blob", "delete", "staging", "incoming/2026/11/changes.json"))
	var deleted map[string]string
	okJSON(&deleted, "blob", "delete", "staging", "dumps/db #1.bin")
	require.Equal(t, map[string]string{"container": "staging", "deleted": "dumps/db #1.bin"}, deleted)
	noBlobs("no blobs in container staging\n", "blob", "list", "staging")

	require.Equal(t, "deleted blob container staging\n", ok("blob", "container", "delete", "staging", "--yes"))
	require.NotContains(t, ok("blob", "container", "list"), "staging")
}

func TestBlobCommandErrors(t *testing.T) {
	srv := startInstance(t)
	code, _, errOut := sluiceCmd(t, "blob", "container", "create", "staging", "--server", srv)
	require.Equal(t, 0, code, errOut)
	file := filepath.Join(t.TempDir(), "f.txt")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"blob"}, 2, "missing verb"},
		{[]string{"blob", "frobnicate"}, 2, "unknown verb"},
		{[]string{"blob", "container"}, 2, "missing verb"},
		{[]string{"blob", "container", "create"}, 2, "give exactly one container name"},
		{[]string{"blob", "container", "create", "Bad_Name", "--server", srv}, 1, `container name "Bad_Name": use 1-63 lowercase letters`},
		{[]string{"blob", "container", "create", "staging", "--server", srv}, 1, "already exists"},
		{[]string{"blob", "container", "delete", "staging"}, 2, "add --yes to confirm"},
		{[]string{"blob", "container", "delete", "missing", "--yes", "--server", srv}, 1, "blob container missing not found"},
		{[]string{"blob", "put", "staging", "a"}, 2, "give the container, the blob name and the file"},
		{[]string{"blob", "put", "staging", "a", file, "--meta", "novalue"}, 2, "use name=value"},
		{[]string{"blob", "put", "staging", "a", file, "--meta", "a b=c"}, 2, "a name is letters, digits"},
		{[]string{"blob", "put", "staging", "a", filepath.Join(t.TempDir(), "nope"), "--server", srv}, 1, "no such file"},
		{[]string{"blob", "put", "missing", "a", file, "--server", srv}, 1, "blob container missing not found: create it"},
		{[]string{"blob", "put", "staging", "a/../b", file, "--server", srv}, 1, `blob name "a/../b": a path segment must not be ".."`},
		{[]string{"blob", "put", "staging", "a//b", file, "--server", srv}, 1, "empty path segment"},
		{[]string{"blob", "put", "staging", "/a", file, "--server", srv}, 1, "must not start with '/'"},
		{[]string{"blob", "get", "staging"}, 2, "give the container and the blob name"},
		{[]string{"blob", "get", "staging", "nope", "--json"}, 2, "give -o FILE"},
		{[]string{"blob", "get", "staging", "nope", "--server", srv}, 1, `blob "nope" not found in container staging`},
		{[]string{"blob", "get", "missing", "nope", "--server", srv}, 1, "blob container missing not found"},
		{[]string{"blob", "stat", "staging", "nope", "--server", srv}, 1, `blob "nope" not found in container staging`},
		{[]string{"blob", "stat", "missing", "nope", "--server", srv}, 1, "blob container missing not found"},
		{[]string{"blob", "list", "missing", "--server", srv}, 1, "blob container missing not found"},
		{[]string{"blob", "list"}, 2, "give exactly one container name"},
		{[]string{"blob", "delete", "staging", "nope", "--server", srv}, 1, `blob "nope" not found`},
		{[]string{"blob", "list", "staging", "--server", "http://127.0.0.1:1"}, 1, "is 'sluice dev' or 'sluice serve' running"},
		{[]string{"blob", "put", "staging", "a", file, "--server", "http://127.0.0.1:1"}, 1, "is 'sluice dev' or 'sluice serve' running"},
	} {
		withInput(t, "")
		code, _, errOut := sluiceCmd(t, tc.args...)
		require.Equal(t, tc.code, code, "sluice %v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.msg, "sluice %v", tc.args)
		require.True(t, strings.HasPrefix(errOut, "sluice blob: "), "sluice %v: %s", tc.args, errOut)
	}
	// None of it stored a blob.
	code, out, errOut := sluiceCmd(t, "blob", "list", "staging", "--json", "--server", srv)
	require.Equal(t, 0, code, errOut)
	var listed gateway.BlobListResponse
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Empty(t, listed.Blobs)
}

func TestBlobHelp(t *testing.T) {
	withInput(t, "")
	for _, verb := range blobCommands()[1:] {
		code, out, _ := sluiceCmd(t, "blob", verb.name, "--help")
		require.Equal(t, 0, code, "sluice blob %s --help", verb.name)
		require.Contains(t, out, "Usage: sluice blob "+verb.name, "sluice blob %s --help", verb.name)
		require.Contains(t, out, "-server")
		require.Contains(t, out, "-json")
		require.Contains(t, out, "Example")
	}
	for _, verb := range blobContainerCommands() {
		code, out, _ := sluiceCmd(t, "blob", "container", verb.name, "--help")
		require.Equal(t, 0, code)
		require.Contains(t, out, "Usage: sluice blob container "+verb.name)
	}
	code, out, _ := sluiceCmd(t, "blob", "--help")
	require.Equal(t, 0, code)
	for _, c := range blobCommands() {
		require.Contains(t, out, c.name)
	}
	_, out, _ = sluiceCmd(t, "--help")
	require.Contains(t, out, "blob")
}
