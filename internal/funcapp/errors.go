package funcapp

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem found in an app folder. Load and the Parse functions
// report every problem they find, each as an *Error, joined with errors.Join.
type Error struct {
	// File is the file at fault, relative to the app root and slash-separated
	// ("host.json", "orders/function.json"); "" for the app as a whole.
	File string
	// Field is the JSON path of the value at fault, as the documentation
	// spells the names ("bindings[0].queueName",
	// "customHandler.description.defaultExecutablePath"); "" for the whole
	// file.
	Field string
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string
}

// Error reads "File: Field: Msg", leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns the *Error values inside err, which is an error returned by
// Load (a join of them), one *Error, or nil.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range joined.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}

// report collects the errors and warnings of one file.
type report struct {
	file     string
	errs     []error
	warnings []string
	// unresolved holds the JSON paths (lower-case) of strings naming a
	// missing %setting%: reported once, and not checked further.
	unresolved map[string]bool
}

func (r *report) markUnresolved(path string) {
	if r.unresolved == nil {
		r.unresolved = map[string]bool{}
	}
	r.unresolved[strings.ToLower(path)] = true
}

func (r *report) isUnresolved(path string) bool {
	return r.unresolved[strings.ToLower(path)]
}

func (r *report) errorf(field, format string, args ...any) {
	r.errs = append(r.errs, &Error{File: r.file, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (r *report) warnf(field, format string, args ...any) {
	prefix := r.file + ": "
	if field != "" {
		prefix += field + ": "
	}
	r.warnings = append(r.warnings, prefix+fmt.Sprintf(format, args...))
}
