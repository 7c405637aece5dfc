package auth

import (
	"fmt"
	"net/http"
)

// Error is a refused request: the status to answer, a message that says
// what is wrong and what to do, and headers to add (WWW-Authenticate).
type Error struct {
	Status int
	Msg    string
	Header http.Header
}

func (e *Error) Error() string { return e.Msg }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}
