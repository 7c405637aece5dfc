package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/web"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", "<title>Sluice</title>"},
		{"/ui/", "text/html; charset=utf-8", `src="/ui/app.js"`},
		{"/ui/index.html", "text/html; charset=utf-8", "Dead letters"},
		{"/ui/app.js", "text/javascript; charset=utf-8", "/api/v1/overview"},
		{"/ui/app.css", "text/css; charset=utf-8", "font"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp := get(t, h, "GET", tc.path)
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
		require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"), tc.path)
		require.Contains(t, string(body), tc.contains, tc.path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag, tc.path)
		require.Equal(t, http.StatusNotModified, get(t, h, "GET", tc.path, "If-None-Match", etag).StatusCode, tc.path)
	}
	require.Contains(t, get(t, h, "GET", "/").Header.Get("Content-Security-Policy"), "default-src 'self'")

	resp := get(t, h, "HEAD", "/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = get(t, h, "GET", "/ui/nothing.js")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = get(t, h, "GET", "/elsewhere")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = get(t, h, "POST", "/")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	resp = get(t, h, "GET", "/ui")
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
}

// TestNoExternalAssets: the page loads nothing from elsewhere (no CDN, no
// web fonts), and has no inline script or style that the page's content
// security policy would block.
func TestNoExternalAssets(t *testing.T) {
	t.Parallel()
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := filepath.WalkDir("static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		text := strings.ReplaceAll(string(data), `xmlns="http://www.w3.org/2000/svg"`, "")
		require.Empty(t, url.FindAllString(text, -1), "%s refers to another site", p)
		require.NotContains(t, text, "@import", p)
		if strings.HasSuffix(p, ".html") {
			require.NotRegexp(t, `<script>|<script [^>]*>[^<]+</script>|<style|\sstyle=|\son[a-z]+=`, text, p)
		}
		if strings.HasSuffix(p, ".js") {
			require.NotRegexp(t, `\beval\(|new Function\(|innerHTML|setAttribute\('style'|style:`, text, p)
		}
		return nil
	})
	require.NoError(t, err)
}
