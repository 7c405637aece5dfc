// Package web is Sluice's dashboard: one page, served by every instance at
// "/" and under [Prefix], that shows hubs (partitions, write rates,
// consumer-group lag and owners), functions (processed, failures,
// durations, breakers), queues, dead letters (list, inspect, redrive,
// purge), containers (counts and a document viewer) and instances.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary, with
// no dependencies and nothing loaded from elsewhere. It polls GET
// /api/v1/overview (see package gateway) at once and then every second,
// computes rates between answers, and uses the rest of the HTTP API for
// actions. Dead letters are listed newest first, a page at a time (GET
// /api/v1/deadletters?order=newest and its cursors). An error of one hub,
// queue or container is shown with it; the banner above the page is for
// errors of the whole answer and of actions. Times are shown one way, ISO
// 8601 (2026-12-07 08:14:24), in local time or in UTC as the user toggles
// (a preference kept in localStorage). When the server has API keys (a
// call answers 401), the page asks for a key, keeps it in the tab's
// sessionStorage only and sends it as a bearer token; the page itself
// needs no key.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path under which the dashboard's files are served.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// asset is an embedded file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the dashboard: its page at "/" and at [Prefix], its files
// under [Prefix]. Mount it at both; other paths answer 404.
func Handler() http.Handler {
	assets := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(body)
		}
		assets[strings.TrimPrefix(p, "static/")] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: embedded files: " + err.Error()) // cannot happen: they are compiled in
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		switch {
		case r.URL.Path+"/" == Prefix:
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		case r.URL.Path == "/" || r.URL.Path == Prefix:
			name = "index.html"
		case strings.HasPrefix(r.URL.Path, Prefix):
			name = strings.TrimPrefix(r.URL.Path, Prefix)
		}
		a, ok := assets[name]
		if !ok {
			http.Error(w, "no such file of the dashboard: "+r.URL.Path+" (the dashboard is at /)", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard only answers GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		// Revalidate every time: a new binary may serve new files, and
		// an unchanged file costs a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "index.html" {
			// Everything comes from this server; no inline code.
			h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
