package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// client talks to a running instance's HTTP API.
type client struct {
	base string
	http *http.Client
	json bool
	// key is the API key sent with every request ("": none); caFile, when
	// set, is the CA that signed an https server's certificate.
	key, caFile string
	// header is sent with every request; ctx, if set, bounds them.
	header http.Header
	ctx    context.Context
}

// clientFlags adds --server and --json to fs.
func clientFlags(fs *flag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 2 * time.Minute}}
	fs.StringVar(&c.base, "server", cmp.Or(os.Getenv("SLUICE_SERVER"), defaultServer),
		"URL of a running sluice instance, or its host:port for http (env SLUICE_SERVER)")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of text")
	fs.StringVar(&c.key, "api-key", os.Getenv("SLUICE_KEY"), "API key, when the server requires one (env SLUICE_KEY; prefer the environment: a flag shows in the process list)")
	fs.StringVar(&c.caFile, "cacert", os.Getenv("SLUICE_CACERT"), "PEM file of the CA that signed an https --server's certificate (env SLUICE_CACERT; default: the system's)")
	return c
}

// transport makes the client trust --cacert; done once, before the first
// request.
func (c *client) transport() error {
	if c.caFile == "" || c.http.Transport != nil {
		return nil
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return fmt.Errorf("--cacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--cacert %s: no PEM certificate in it", c.caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.http.Transport = t
	return nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// baseURL is --server as a URL: without a scheme, http:// is assumed (as
// for 127.0.0.1:7070, the address sluice dev prints).
func (c *client) baseURL() string {
	base := strings.TrimSpace(c.base)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimRight(base, "/")
}

// do sends a request and decodes a JSON answer into out (when not nil). It
// returns the raw answer body too, for --json output.
func (c *client) do(method, path string, query url.Values, contentType string, body []byte, out any) ([]byte, error) {
	u := c.baseURL() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	if err := c.transport(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(cmp.Or(c.ctx, context.Background()), method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bad --server %q: %w", c.base, err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if contentType == "" && method == http.MethodPost {
		// The server refuses a POST without a type that a browser could
		// not send cross-site; these carry no body or a JSON one.
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.reachError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.baseURL(), err)
	}
	if resp.StatusCode >= 300 {
		return nil, c.answerError(resp, data)
	}
	if len(data) > 0 && !json.Valid(data) {
		// Every answer of the API is JSON: this is another server.
		return nil, &apiError{Status: resp.StatusCode, Msg: c.notSluice(resp, data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("unexpected answer from %s: %w", c.baseURL(), err)
		}
	}
	return data, nil
}

// reachError is the error of a request that got no answer.
func (c *client) reachError(err error) error {
	if errors.As(err, new(x509.UnknownAuthorityError)) {
		return fmt.Errorf("cannot trust sluice at %s: %v\n(give the CA that signed its certificate with --cacert or SLUICE_CACERT)", c.baseURL(), errors.Unwrap(err))
	}
	return fmt.Errorf("cannot reach sluice at %s: %v\n(is 'sluice dev' or 'sluice serve' running? point --server or SLUICE_SERVER at it)", c.baseURL(), errors.Unwrap(err))
}

// answerError is the error of an answer with a status of 300 or more: the
// API's {"error": "..."}, or a summary of an answer that is not one.
func (c *client) answerError(resp *http.Response, data []byte) *apiError {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		return &apiError{Status: resp.StatusCode, Msg: c.notSluice(resp, data)}
	}
	if resp.StatusCode == http.StatusUnauthorized && c.key == "" {
		e.Error += "\n(give the key in SLUICE_KEY or with --api-key)"
	}
	return &apiError{Status: resp.StatusCode, Msg: e.Error}
}

// notSluice summarises an answer that the Sluice API would not give (an
// HTML page, JSON without "error"): its status and a short first line,
// never the whole page.
func (c *client) notSluice(resp *http.Response, data []byte) string {
	return fmt.Sprintf("%s answered %s%s, which is not an answer of the Sluice API: is --server (or SLUICE_SERVER) the address of a sluice instance?",
		c.baseURL(), resp.Status, answerSummary(data))
}

// answerSummary is `: "<first line>"` of a body, at most 80 characters (an
// HTML page's title if it has one), or "" for an empty body.
func answerSummary(data []byte) string {
	text := string(data)
	if i := strings.Index(strings.ToLower(text), "<title>"); i >= 0 {
		rest := text[i+len("<title>"):]
		if j := strings.Index(strings.ToLower(rest), "</title>"); j >= 0 {
			text = rest[:j]
		}
	}
	line := ""
	for l := range strings.Lines(text) {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, line)
	if line == "" {
		return ""
	}
	if r := []rune(line); len(r) > 80 {
		line = string(r[:79]) + "…"
	}
	return fmt.Sprintf(": %q", line)
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
