package httpsink

import "errors"

var (
	// ErrConfig is returned by New for a Config that cannot work; the
	// message names the field.
	ErrConfig = errors.New("httpsink: invalid config")
	// ErrPipeline is returned by Apply for a change set of another
	// pipeline than Config.Pipeline.
	ErrPipeline = errors.New("httpsink: change set of another pipeline")
	// ErrUnavailable is returned by Apply when the endpoint did not take a
	// part now: an answer 408, 409, 425, 429 or 5xx (the message holds its
	// Retry-After), a network error or a timeout. The change set is to be
	// sent again later, whole: parts already taken carry the same
	// Idempotency-Key again.
	ErrUnavailable = errors.New("httpsink: destination unavailable")
	// ErrCredentials is returned by Apply when the endpoint answers 401 or
	// 403: the credentials in Config.Headers (or the URL) are wrong. The
	// change set is to be sent again once an operator fixes them.
	ErrCredentials = errors.New("httpsink: destination refused the credentials; check the destination's credentials (its headers)")
	// ErrNotFound is returned by Apply when the endpoint answers 404:
	// the URL is probably wrong, and dead-lettering every change would
	// hide it.
	ErrNotFound = errors.New("httpsink: destination URL not found; check the destination's URL")
	// ErrRedirect is returned by Apply when the endpoint answers with a
	// redirect the sink does not follow (one that would turn the POST into
	// a GET, 304, or a 3xx without Location): set the URL to the final
	// address.
	ErrRedirect = errors.New("httpsink: destination redirects; set the URL to the final address")
)
