package httpsource

import (
	"errors"
	"fmt"
	"net/http"
)

var (
	// ErrInvalidConfig is returned by New for a Config that cannot work;
	// the message names the field.
	ErrInvalidConfig = errors.New("httpsource: invalid config")
	// ErrBadPosition is returned by Run when after is not a position this
	// source wrote.
	ErrBadPosition = errors.New("httpsource: bad position")
	// ErrBadPage is returned by Run when a page the API answered cannot be
	// read: not JSON, no array of items, an item that is not an object or
	// lacks a key field, no next or delta link, a link to another host.
	// Nothing of that page is handed over.
	ErrBadPage = errors.New("httpsource: bad page")
	// ErrUnavailable is returned by Run when a link kept failing (network
	// errors, 408, 429, 5xx) for Config.Retries retries in a row.
	ErrUnavailable = errors.New("httpsource: API unavailable")
)

// StatusError is returned by Run when the API answers a status that
// retrying cannot fix (400, 401, 403, 404...; and 410 Gone on the
// initial URL itself). It names the link by scheme, host and path only:
// the query and OData parameters, where delta tokens live, are left out,
// and header values never appear.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Link is the link read, as scheme://host/path.
	Link string
	// Excerpt is the start of the answer's body, with header values and
	// the link's token blanked out.
	Excerpt string
}

// Error says the status, the link, the answer's start and what to check.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("httpsource: GET %s: %d %s", e.Link, e.Code, http.StatusText(e.Code))
	if e.Excerpt != "" {
		msg += fmt.Sprintf(" (answer: %q)", e.Excerpt)
	}
	switch e.Code {
	case http.StatusUnauthorized:
		msg += ": check the credentials (Config.Headers, Config.HeaderFunc: a missing or expired Authorization token)"
	case http.StatusForbidden:
		msg += ": the credentials are not allowed to read this resource: check the application's permissions (for Microsoft Graph: Sites.Read.All)"
	case http.StatusNotFound:
		msg += ": check Config.URL (the site, list or resource may not exist)"
	case http.StatusBadRequest:
		msg += ": the API refused the request: check Config.URL's query and Config.Headers"
	case http.StatusGone:
		msg += ": the initial URL itself is gone: check Config.URL"
	default:
		msg += ": check Config.URL and Config.Headers"
	}
	return msg
}
