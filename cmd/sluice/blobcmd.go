package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/gateway"
)

func blobCommands() []command {
	return []command{
		{"container", "manage blob containers: create, list, delete", runBlobContainer},
		{"put", "store a blob from a file or standard input", blobPut},
		{"get", "write a blob's content to standard output or a file", blobGet},
		{"stat", "show a blob's size, content type, metadata and ETag", blobStat},
		{"list", "list the blobs of a container (--prefix to narrow)", blobList},
		{"delete", "delete a blob", blobDelete},
	}
}

func runBlob(args []string) error {
	return runVerbs("blob", `Store blobs: named contents (staged change sets, large payloads) in
containers, kept in the engine's object store. A blob name is a path like
incoming/2026/11/file.json; every write of a blob gives it a new ETag.`, blobCommands(), args)
}

func blobContainerCommands() []command {
	return []command{
		{"create", "create a blob container", blobContainerCreate},
		{"list", "list blob containers", blobContainerList},
		{"delete", "delete a blob container and all its blobs", blobContainerDelete},
	}
}

func runBlobContainer(args []string) error {
	return runVerbs("blob container", "Manage blob containers.", blobContainerCommands(), args)
}

// blobPath is the API path of a container, or of a blob when name is
// given (checked first: the server would clean a path with "." or ".."
// segments into another name).
func blobPath(container string, name ...string) (string, error) {
	p := "/api/v1/blobs/" + url.PathEscape(container)
	if len(name) == 0 {
		return p, nil
	}
	if err := blob.ValidateName(name[0]); err != nil {
		return "", err
	}
	segs := strings.Split(name[0], "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return p + "/" + strings.Join(segs, "/"), nil
}

func blobContainerCreate(args []string) error {
	fs := flagSet("blob container create", "sluice blob container create NAME [flags]", `
Create a blob container: 1-63 lowercase letters, digits and '-', starting
with a letter or digit. It is the object store bucket blob-NAME.

Example:
  sluice blob container create staging`)
	c := clientFlags(fs)
	name, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	var out gateway.BlobContainerJSON
	raw, err := c.do("POST", "/api/v1/blobs", nil, "application/json", jsonBody(gateway.CreateBlobContainerRequest{Name: name}), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created blob container %s\n", out.Name) })
	return nil
}

func blobContainerList(args []string) error {
	fs := flagSet("blob container list", "sluice blob container list [flags]", `
List blob containers with the bytes they take in the store.

Example:
  sluice blob container list --json | jq -r '.containers[].name'`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct{ Containers []gateway.BlobContainerJSON }
	raw, err := c.do("GET", "/api/v1/blobs", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tSTORED BYTES\tCREATED")
		for _, ct := range out.Containers {
			fmt.Fprintf(w, "%s\t%d\t%s\n", ct.Name, ct.StoredBytes, ct.Created.Local().Format(time.DateTime))
		}
	})
	return nil
}

func blobContainerDelete(args []string) error {
	fs := flagSet("blob container delete", "sluice blob container delete NAME --yes [flags]", `
Delete a blob container with all its blobs.

Example:
  sluice blob container delete staging --yes`)
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: the blobs cannot be recovered")
	name, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("deleting blob container %s destroys its blobs; add --yes to confirm", name)
	}
	p, _ := blobPath(name)
	if _, err := c.do("DELETE", p, nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"deleted": name}), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "deleted blob container %s\n", name)
	})
	return nil
}

// transfer sends a request whose body or answer is a blob's content, which
// can be large: streamed, and without the client's overall timeout. An
// error answer is returned as an *apiError.
func (c *client) transfer(method, p string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
	if err := c.transport(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(cmp.Or(c.ctx, context.Background()), method, c.baseURL()+p, body)
	if err != nil {
		return nil, fmt.Errorf("bad --server %q: %w", c.base, err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return nil, c.reachError(err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if len(data) == 0 {
			// A HEAD answer has no body.
			return nil, &apiError{Status: resp.StatusCode, Msg: resp.Status}
		}
		return nil, c.answerError(resp, data)
	}
	return resp, nil
}

func blobPut(args []string) error {
	fs := flagSet("blob put", "sluice blob put CONTAINER NAME FILE|- [flags]", `
Store a blob, replacing any blob of that name: the content of FILE, or of
standard input with '-', streamed. The content type is --content-type, or
guessed from the name's extension (application/octet-stream when there is
none). Each --meta name=value is kept with the blob.

Examples:
  sluice blob put staging incoming/2026/11/changes.json changes.json
  pg_dump mydb | sluice blob put staging dumps/mydb.sql - --meta source=pg_dump
  sluice blob put staging photos/1.jpg photo.jpg --content-type image/jpeg`)
	c := clientFlags(fs)
	contentType := fs.String("content-type", "", "the blob's media type (default: guessed from the name)")
	var metas multiFlag
	fs.Var(&metas, "meta", "metadata name=value kept with the blob (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usagef("give the container, the blob name and the file (or - for standard input) (got %d arguments)", len(pos))
	}
	container, name, file := pos[0], pos[1], pos[2]
	header := http.Header{}
	for _, m := range metas {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return usagef("--meta %q: use name=value", m)
		}
		if strings.ContainsFunc(k, func(r rune) bool {
			return !(r == '-' || r == '_' || r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)))
		}) {
			return usagef("--meta %q: a name is letters, digits, '-' and '_'", m)
		}
		header.Set(gateway.HeaderBlobMetaPrefix+k, v)
	}
	ct := *contentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	if ct != "" {
		header.Set("Content-Type", ct)
	}
	p, err := blobPath(container, name)
	if err != nil {
		return err
	}
	var body io.Reader = stdin
	size := int64(-1)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		body = f
	} else if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		return usagef("'-' reads the content from standard input: pipe it in, or give a file")
	}
	resp, err := c.transfer("PUT", p, header, body, size)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.baseURL(), err)
	}
	var info gateway.BlobJSON
	if err := json.Unmarshal(raw, &info); err != nil {
		return &apiError{Status: resp.StatusCode, Msg: c.notSluice(resp, raw)}
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "stored blob %s in container %s: %d bytes, %s, etag %s\n", info.Name, info.Container, info.Size, info.ContentType, info.ETag)
	})
	return nil
}

// infoFromHeaders is a blob's info as GET and HEAD answer it (Modified to
// the second).
func infoFromHeaders(container, name string, h http.Header) gateway.BlobJSON {
	info := gateway.BlobJSON{Container: container, Name: name, ContentType: h.Get("Content-Type"),
		Digest: h.Get(gateway.HeaderBlobDigest), ETag: strings.Trim(h.Get("ETag"), `"`)}
	info.Size, _ = strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	info.Modified, _ = http.ParseTime(h.Get("Last-Modified"))
	for k, vs := range h {
		if mk, ok := strings.CutPrefix(k, gateway.HeaderBlobMetaPrefix); ok && mk != "" {
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			info.Metadata[strings.ToLower(mk)] = strings.Join(vs, ", ")
		}
	}
	return info
}

func blobGet(args []string) error {
	fs := flagSet("blob get", "sluice blob get CONTAINER NAME [-o FILE] [flags]", `
Write a blob's content to standard output, or to FILE with -o. The content
is checked against the blob's digest as it is read; a blob overwritten or
deleted meanwhile ends the download with an error (and FILE is removed).
With --json (and -o), print the blob's info instead of a summary.

Examples:
  sluice blob get staging incoming/2026/11/changes.json | jq .
  sluice blob get staging dumps/mydb.sql -o mydb.sql`)
	c := clientFlags(fs)
	out := fs.String("o", "", "write the content to this file instead of standard output")
	container, name, p, err := blobArgs(fs, args)
	if err != nil {
		return err
	}
	toStdout := *out == "" || *out == "-"
	if toStdout && c.json {
		return usagef("--json prints the blob's info: give -o FILE for its content (or use 'sluice blob stat --json')")
	}
	resp, err := c.transfer("GET", p, nil, nil, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	info := infoFromHeaders(container, name, resp.Header)
	if toStdout {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fmt.Errorf("blob %s of container %s: the download broke off: %w (it may have been overwritten or deleted meanwhile; get it again)", name, container, err)
		}
		return nil
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil && n != info.Size {
		err = fmt.Errorf("got %d of %d bytes", n, info.Size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		return fmt.Errorf("blob %s of container %s: the download broke off: %w (it may have been overwritten or deleted meanwhile; get it again)", name, container, err)
	}
	c.print(append(jsonBody(info), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "wrote %d bytes of blob %s (etag %s) to %s\n", n, name, info.ETag, *out)
	})
	return nil
}

func blobStat(args []string) error {
	fs := flagSet("blob stat", "sluice blob stat CONTAINER NAME [flags]", `
Show a blob's size, content type, metadata, last modification, digest and
ETag.

Example:
  sluice blob stat staging incoming/2026/11/changes.json --json | jq -r .etag`)
	c := clientFlags(fs)
	container, name, p, err := blobArgs(fs, args)
	if err != nil {
		return err
	}
	resp, err := c.transfer("HEAD", p, nil, nil, 0)
	if ae, ok := errors.AsType[*apiError](err); ok && ae.Status == http.StatusNotFound {
		// A HEAD answer has no body to say whether the container or the
		// blob is missing; a GET's has.
		resp, err = c.transfer("GET", p, nil, nil, 0)
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	info := infoFromHeaders(container, name, resp.Header)
	c.print(append(jsonBody(info), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "blob %s of container %s\n", name, container)
		fmt.Fprintf(w, "size\t%d bytes\n", info.Size)
		fmt.Fprintf(w, "content type\t%s\n", info.ContentType)
		fmt.Fprintf(w, "modified\t%s\n", info.Modified.Local().Format(time.DateTime))
		fmt.Fprintf(w, "etag\t%s\n", info.ETag)
		fmt.Fprintf(w, "digest\t%s\n", info.Digest)
		for _, k := range slices.Sorted(maps.Keys(info.Metadata)) {
			fmt.Fprintf(w, "meta %s\t%s\n", k, info.Metadata[k])
		}
	})
	return nil
}

func blobList(args []string) error {
	fs := flagSet("blob list", "sluice blob list CONTAINER [--prefix P] [flags]", `
List the blobs of a container, by name; --prefix lists those whose names
start with it.

Examples:
  sluice blob list staging --prefix incoming/2026/11/
  sluice blob list staging --json | jq -r '.blobs[] | select(.size > 1000000) | .name'`)
	c := clientFlags(fs)
	prefix := fs.String("prefix", "", "list only blobs whose names start with this")
	container, err := parseName(fs, args, "container")
	if err != nil {
		return err
	}
	p, _ := blobPath(container)
	var q url.Values
	if *prefix != "" {
		q = url.Values{"prefix": {*prefix}}
	}
	var out gateway.BlobListResponse
	raw, err := c.do("GET", p, q, "", nil, &out)
	if err != nil {
		return err
	}
	if len(out.Blobs) == 0 && !c.json {
		fmt.Fprintf(stderr, "no blobs in container %s%s\n", container, map[bool]string{true: " starting with " + *prefix}[*prefix != ""])
		return nil
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tSIZE\tCONTENT TYPE\tMODIFIED\tETAG")
		for _, b := range out.Blobs {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", b.Name, b.Size, b.ContentType, b.Modified.Local().Format(time.DateTime), b.ETag)
		}
	})
	return nil
}

func blobDelete(args []string) error {
	fs := flagSet("blob delete", "sluice blob delete CONTAINER NAME [flags]", `
Delete a blob.

Example:
  sluice blob delete staging incoming/2026/11/changes.json`)
	c := clientFlags(fs)
	container, name, p, err := blobArgs(fs, args)
	if err != nil {
		return err
	}
	if _, err := c.do("DELETE", p, nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"container": container, "deleted": name}), '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "deleted blob %s from container %s\n", name, container)
	})
	return nil
}

// blobArgs parses the flags and the two arguments of a command on one
// blob: its container and name, and the blob's API path.
func blobArgs(fs *flag.FlagSet, args []string) (container, name, path string, err error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", "", "", err
	}
	if len(pos) != 2 {
		return "", "", "", usagef("give the container and the blob name (got %d arguments)", len(pos))
	}
	container, name = pos[0], pos[1]
	path, err = blobPath(container, name)
	return container, name, path, err
}
