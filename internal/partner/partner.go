// Package partner is Sluice's integration layer for outside organisations:
// a registry of partners (their tokens and the message types they send),
// shared by every instance through a KV bucket and followed live; the
// inbound path that takes a partner's XML or JSON message, checks its token,
// validates it against the type's schema (JSON Schema 2020-12 or XSD),
// transforms it (jq or XSLT 1.0), validates the result against the target
// schema and publishes it to the type's hub; and the rejection log that
// support staff (and the partner) read when a message was refused.
package partner

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Errors of the registry and of inbound messages. Each error a caller
// sees wraps one of them, with a message that says what to do.
var (
	// ErrNotFound: no such partner, token or message type.
	ErrNotFound = errors.New("not found")
	// ErrExists: a partner or message type of that name exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a definition that cannot be registered.
	ErrInvalid = errors.New("invalid")
	// ErrUnauthorized: a missing, wrong, expired or revoked token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: a disabled partner, or a type it may not send.
	ErrForbidden = errors.New("forbidden")
	// ErrRejected: a message that failed parsing or validation (see
	// *Rejection for the details).
	ErrRejected = errors.New("message rejected")
	// ErrTooLarge: a message over the type's size limit.
	ErrTooLarge = errors.New("message too large")
	// ErrTypeUnusable: a message type that cannot take messages now (its
	// hub is missing, or it does not compile on this instance): the
	// operator's to fix, not the sender's.
	ErrTypeUnusable = errors.New("the message type cannot take messages now")
)

// Formats of messages.
const (
	FormatJSON = "json"
	FormatXML  = "xml"
)

// Partner is an outside organisation as stored. Token secrets are never
// stored, only their SHA-256.
type Partner struct {
	ID      string  `json:"id"`
	Name    string  `json:"name,omitempty"`
	Enabled bool    `json:"enabled"`
	Tokens  []Token `json:"tokens,omitempty"`
	// Endpoints receive deliveries for the partner.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated,omitzero"`
}

// Token is one of a partner's credentials. A partner may hold several at
// a time, so that a new one can be rolled out before the old is revoked.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Hash    string    `json:"hash,omitempty"` // hex SHA-256 of the secret
	Created time.Time `json:"created"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// LastUsed is recorded at most about once a minute.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Expired reports whether t has expired at now.
func (t Token) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

// MessageType is a kind of message partners send: how it is checked,
// transformed and routed.
type MessageType struct {
	// Partner owns the type; "" makes it shared: any partner listed in
	// Partners (or every partner, when Partners is empty) may send it.
	Partner  string   `json:"partner,omitempty"`
	Name     string   `json:"name"`
	Partners []string `json:"partners,omitempty"`
	// Format of the messages as partners send them: "json" or "xml".
	Format string `json:"format"`
	// Schema validates the input: JSON Schema (2020-12 unless it says
	// otherwise in $schema) for JSON, XSD for XML. Empty: no check beyond
	// well-formedness.
	Schema string `json:"schema,omitempty"`
	// Transform turns the input into what the hub gets: a jq program for
	// JSON, an XSLT 1.0 stylesheet for XML. Empty: the input unchanged.
	Transform string `json:"transform,omitempty"`
	// TargetFormat is what Transform produces: "json" or "xml". Default:
	// Format (an XSLT that writes JSON with method="text" sets "json").
	TargetFormat string `json:"target_format,omitempty"`
	// TargetSchema validates the transformed message (JSON Schema for a
	// JSON target, XSD for XML).
	TargetSchema string `json:"target_schema,omitempty"`
	// Hub receives the accepted messages.
	Hub string `json:"hub"`
	// PartitionKey picks each message's partition key from the
	// transformed message: a jq expression for JSON (".order.id"), an
	// XPath for XML ("/Order/@id"). Empty: the message id.
	PartitionKey string `json:"partition_key,omitempty"`
	// Namespaces bind the prefixes an XPath partition key uses
	// ("po": "urn:example:po"), for XML targets.
	Namespaces map[string]string `json:"namespaces,omitempty"`
	// MaxBytes bounds one message. Default 1 MiB.
	MaxBytes int64     `json:"max_bytes,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	Updated  time.Time `json:"updated,omitzero"`
}

// DefaultMaxMessageBytes is MessageType.MaxBytes when unset.
const DefaultMaxMessageBytes = 1 << 20

// shared is the partner field of a shared type's key in the bucket.
const shared = "_shared"

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidateID checks a partner id or message type name: 1 to 64 lowercase
// letters, digits, '-' and '_', starting with a letter or digit (they are
// parts of URLs and of bucket keys).
func ValidateID(what, id string) error {
	if !idPattern.MatchString(id) || id == shared {
		return fmt.Errorf("%w %s %q: use 1 to 64 lowercase letters, digits, '-' and '_', starting with a letter or digit", ErrInvalid, what, id)
	}
	return nil
}

// TypeKey names a message type: "partner/name", or "name" when shared.
func (t MessageType) TypeKey() string {
	if t.Partner == "" {
		return t.Name
	}
	return t.Partner + "/" + t.Name
}

// Allows reports whether partner p may send messages of type t.
func (t MessageType) Allows(p string) bool {
	if t.Partner != "" {
		return t.Partner == p
	}
	if len(t.Partners) == 0 {
		return true
	}
	for _, q := range t.Partners {
		if q == p {
			return true
		}
	}
	return false
}

func (t *MessageType) normalize() {
	if t.TargetFormat == "" {
		t.TargetFormat = t.Format
	}
	if t.MaxBytes == 0 {
		t.MaxBytes = DefaultMaxMessageBytes
	}
}

// check validates the fields that need no compiling.
func (t *MessageType) check() error {
	if t.Partner != "" {
		if err := ValidateID("partner", t.Partner); err != nil {
			return err
		}
		if len(t.Partners) > 0 {
			return fmt.Errorf("%w message type %q: partners lists who may send a shared type; a type of partner %q is that partner's alone", ErrInvalid, t.Name, t.Partner)
		}
	}
	if err := ValidateID("message type", t.Name); err != nil {
		return err
	}
	for _, p := range t.Partners {
		if err := ValidateID("partner", p); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"format", t.Format}, {"target_format", t.TargetFormat}} {
		if f.v != FormatJSON && f.v != FormatXML {
			return fmt.Errorf("%w message type %q: %s %q: use \"json\" or \"xml\"", ErrInvalid, t.Name, f.name, f.v)
		}
	}
	if t.Format == FormatJSON && t.TargetFormat == FormatXML {
		return fmt.Errorf("%w message type %q: a jq transform writes JSON, so a JSON type cannot have an XML target", ErrInvalid, t.Name)
	}
	if t.Hub == "" {
		return fmt.Errorf("%w message type %q: give the hub that receives its messages", ErrInvalid, t.Name)
	}
	if t.MaxBytes < 0 || t.MaxBytes > 64<<20 {
		return fmt.Errorf("%w message type %q: max_bytes %d: give 1 to %d", ErrInvalid, t.Name, t.MaxBytes, 64<<20)
	}
	return nil
}
