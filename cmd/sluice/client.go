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
	fs.StringVar(&c.base, "server", cmp.Or(os.Getenv("SLUICE_SERVER"), "http://127.0.0.1:7070"),
		"URL of a running sluice instance (env SLUICE_SERVER)")
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

// do sends a request and decodes a JSON answer into out (when not nil). It
// returns the raw answer body too, for --json output.
func (c *client) do(method, path string, query url.Values, contentType string, body []byte, out any) ([]byte, error) {
	u := strings.TrimRight(c.base, "/") + path
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
	if errors.As(err, new(x509.UnknownAuthorityError)) {
		return nil, fmt.Errorf("cannot trust sluice at %s: %v\n(give the CA that signed its certificate with --cacert or SLUICE_CACERT)", c.base, errors.Unwrap(err))
	}
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
		if resp.StatusCode == http.StatusUnauthorized && c.key == "" {
			e.Error += "\n(give the key in SLUICE_KEY or with --api-key)"
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
