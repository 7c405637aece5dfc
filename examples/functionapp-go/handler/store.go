package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// store reads documents through Sluice's HTTP API (/api/v1/containers).
// Sluice does not support cosmosDB input bindings yet, so the functions
// that need to read documents ask the platform directly, as an Azure
// handler would use the Cosmos DB SDK.
type store struct {
	base   string // like http://127.0.0.1:7071; "" when SLUICE_API is not set
	client *http.Client
}

func newStore(base string) *store {
	return &store{base: base, client: &http.Client{Timeout: 10 * time.Second}}
}

// errNotFound is returned by read when the document (or its container)
// does not exist.
var errNotFound = errors.New("not found")

// read returns the document id in partition pk of container, without its
// system fields (_etag, _ts, _lsn).
func (s *store) read(ctx context.Context, container, pk, id string) (map[string]any, error) {
	u := fmt.Sprintf("%s/api/v1/containers/%s/docs/%s/%s", s.base, url.PathEscape(container), url.PathEscape(pk), url.PathEscape(id))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	body, err := s.do(req)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	return withoutSystemFields(doc), nil
}

// queryAll runs a query on container and returns every document's body,
// following the continuation tokens of the pages.
func (s *store) queryAll(ctx context.Context, container, query string) ([]json.RawMessage, error) {
	u := fmt.Sprintf("%s/api/v1/containers/%s/query", s.base, url.PathEscape(container))
	var out []json.RawMessage
	continuation := ""
	for {
		reqBody, _ := json.Marshal(map[string]any{"query": query, "max_items": 1000, "continuation": continuation})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(reqBody))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		body, err := s.do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Documents []struct {
				Body json.RawMessage `json:"body"`
			} `json:"documents"`
			Continuation string `json:"continuation"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("query %s: %w", container, err)
		}
		for _, d := range page.Documents {
			out = append(out, d.Body)
		}
		if page.Continuation == "" {
			return out, nil
		}
		continuation = page.Continuation
	}
}

// do sends req and returns the body of a 2xx answer. A 404 is errNotFound;
// any other status is an error quoting the API's message.
func (s *store) do(req *http.Request) ([]byte, error) {
	if s.base == "" {
		return nil, errors.New("the app setting SLUICE_API, the URL of the Sluice API, is not set: Sluice sets it for the handlers it runs (sluice dev --app DIR); elsewhere, set it")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the Sluice API (SLUICE_API=%s) is not answering: %w", s.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", errNotFound, bytes.TrimSpace(body))
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// withoutSystemFields drops the fields the store adds to every document.
func withoutSystemFields(doc map[string]any) map[string]any {
	for _, k := range []string{"_etag", "_ts", "_lsn"} {
		delete(doc, k)
	}
	return doc
}
