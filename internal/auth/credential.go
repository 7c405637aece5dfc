package auth

import (
	"errors"
	"net/http"
	"strings"
)

// HeaderKey is the header an API key may travel in, instead of
// "Authorization: Bearer <key>".
const HeaderKey = "X-Sluice-Key"

// maxCredential bounds a credential: longer values are refused before any
// work is done on them.
const maxCredential = 1024

// Credential returns the API key a request carries, from
// "Authorization: Bearer <key>" or the X-Sluice-Key header. present says
// whether either header is there at all; err says what is wrong with a
// malformed one. The key is never part of an error.
func Credential(h http.Header) (key string, present bool, err error) {
	auths, keys := h.Values("Authorization"), h.Values(HeaderKey)
	if len(auths) == 0 && len(keys) == 0 {
		return "", false, nil
	}
	if len(auths)+len(keys) > 1 {
		return "", true, errors.New("the request carries more than one credential: send the key once, in Authorization: Bearer <key> or in X-Sluice-Key")
	}
	if len(keys) == 1 {
		key = strings.TrimSpace(keys[0])
	} else {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(auths[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", true, errors.New("the Authorization header must be 'Bearer <key>'")
		}
		key = strings.TrimSpace(rest)
	}
	switch {
	case key == "":
		return "", true, errors.New("the API key header is empty: give the key")
	case len(key) > maxCredential:
		return "", true, errors.New("the API key is too long to be one")
	case strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", true, errors.New("the API key contains spaces or control characters")
	}
	return key, true, nil
}
