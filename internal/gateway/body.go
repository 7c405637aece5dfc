package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
)

// readBody reads a request body of at most limit bytes. A Content-Length
// over the limit is refused before anything is read, so a client that
// sent "Expect: 100-continue" gets its 413 without sending the body.
// tooLarge says what to do instead.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge string) ([]byte, error) {
	if err := checkLength(r, limit, tooLarge); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err, limit, tooLarge)
	}
	return body, nil
}

// checkLength refuses a declared body over limit.
func checkLength(r *http.Request, limit int64, tooLarge string) error {
	if r.ContentLength > limit {
		return tooLargef("the request body is %d bytes, over the limit of %d bytes: %s", r.ContentLength, limit, tooLarge)
	}
	return nil
}

// bodyError says what went wrong reading a body: too large (413), too slow
// (408), or cut off (400). Network details stay out of the answer.
func bodyError(err error, limit int64, tooLarge string) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLargef("the request body is over the limit of %d bytes: %s", limit, tooLarge)
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Status: http.StatusRequestTimeout, Msg: "the request body did not arrive within the server's read timeout: send it faster, or in smaller requests"}
	}
	return invalidRequestf("cannot read the request body: the client stopped sending it or the connection broke")
}
