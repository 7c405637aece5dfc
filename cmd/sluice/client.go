package main

import (
	"bytes"
	"cmp"
	"context"
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
)

// client talks to a running instance's HTTP API.
type client struct {
	base string
	http *http.Client
	json bool
	// header is sent with every request; ctx, if set, bounds them.
	header http.Header
	ctx    context.Context
}

// clientFlags adds --server and --json to fs.
func clientFlags(fs *flag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 2 * time.Minute}}
	fs.StringVar(&c.base, "server", cmp.Or(os.Getenv("SLUICE_SERVER"), "http://127.0.0.1:7070"),
		"URL of a running sluice instance (env SLUICE_SERVER)")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of text")
	return c
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// do sends a request and decodes a JSON answer into out (when not nil). It
// returns the raw answer body too, for --json output.
func (c *client) do(method, path string, query url.Values, contentType string, body []byte, out any) ([]byte, error) {
	u := strings.TrimRight(c.base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(cmp.Or(c.ctx, context.Background()), method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bad --server %q: %w", c.base, err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach sluice at %s: %v\n(is 'sluice dev' or 'sluice serve' running? point --server or SLUICE_SERVER at it)", c.base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("unexpected answer from %s: %w", c.base, err)
		}
	}
	return data, nil
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
