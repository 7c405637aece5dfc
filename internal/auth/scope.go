package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Verbs of the permissions a request can need. A scope grants one verb,
// for resource verbs on the resources its pattern matches.
const (
	// VerbAdmin is everything, including API keys.
	VerbAdmin = "admin"
	// VerbRead is every GET and HEAD of the API, document queries and
	// /metrics.
	VerbRead = "read"
	// VerbPublish publishes events to a hub.
	VerbPublish = "publish"
	// VerbSend sends messages to a queue.
	VerbSend = "send"
	// VerbReceive receives, completes, abandons and renews a queue's
	// messages.
	VerbReceive = "receive"
	// VerbDocs writes documents of a container.
	VerbDocs = "docs"
	// VerbBlobs writes and deletes blobs of a blob container.
	VerbBlobs = "blobs"
	// VerbReplay moves a hub's consumer-group checkpoints.
	VerbReplay = "replay"
	// VerbDeadLetters redrives and purges dead letters.
	VerbDeadLetters = "deadletters"
	// VerbBreakers opens and closes circuit breakers.
	VerbBreakers = "breakers"
)

// resourceVerbs take a resource pattern ("publish:telemetry"); the others
// stand alone.
var resourceVerbs = []string{VerbPublish, VerbSend, VerbReceive, VerbDocs, VerbBlobs, VerbReplay}

var plainVerbs = []string{VerbAdmin, VerbRead, VerbDeadLetters, VerbBreakers}

// Need is what a request needs: a verb and, for resource verbs, the
// resource's name. The zero Need is a public route (health checks).
type Need struct {
	Verb     string
	Resource string
}

// Public reports whether the route needs no permission.
func (n Need) Public() bool { return n.Verb == "" }

func (n Need) String() string {
	if n.Resource == "" {
		return n.Verb
	}
	return n.Verb + ":" + n.Resource
}

// Scope is one permission of a key: "admin", "read", "deadletters",
// "breakers", or a resource verb with a pattern: "publish:telemetry",
// "send:orders-*", "docs:*". A pattern is a name, a prefix ending in "*",
// or "*"; a resource verb alone ("publish") means every resource.
type Scope struct {
	Verb    string
	Pattern string // "" for plain verbs
}

// ParseScope parses a scope and says what is wrong with a bad one.
func ParseScope(s string) (Scope, error) {
	verb, pattern, hasPattern := strings.Cut(strings.TrimSpace(s), ":")
	switch {
	case slices.Contains(plainVerbs, verb):
		if hasPattern {
			return Scope{}, fmt.Errorf("scope %q: %s takes no resource; use %q", s, verb, verb)
		}
		return Scope{Verb: verb}, nil
	case slices.Contains(resourceVerbs, verb):
		if !hasPattern {
			pattern = "*"
		}
		if err := validPattern(pattern); err != nil {
			return Scope{}, fmt.Errorf("scope %q: %w", s, err)
		}
		return Scope{Verb: verb, Pattern: pattern}, nil
	default:
		return Scope{}, fmt.Errorf("scope %q: unknown; use %s, or %s followed by :NAME, :PREFIX* or :*",
			s, strings.Join(plainVerbs, ", "), strings.Join(resourceVerbs, ", "))
	}
}

// validPattern accepts a resource name, a prefix ending in "*", or "*".
// Names are those of hubs, queues and containers: letters, digits, '-',
// '_' and '.'.
func validPattern(p string) error {
	name := strings.TrimSuffix(p, "*")
	if p == "" {
		return fmt.Errorf("the resource is empty: give a name, a prefix ending in *, or *")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("resource pattern %q: use letters, digits, '-', '_', '.', and '*' only at the end", p)
		}
	}
	if len(p) > 256 {
		return fmt.Errorf("resource pattern is longer than 256 characters")
	}
	return nil
}

func (s Scope) String() string {
	if s.Pattern == "" {
		return s.Verb
	}
	return s.Verb + ":" + s.Pattern
}

// Allows reports whether the scope grants need.
func (s Scope) Allows(need Need) bool {
	switch {
	case need.Public() || s.Verb == VerbAdmin:
		return true
	case s.Verb != need.Verb:
		return false
	case s.Pattern == "":
		return true
	case strings.HasSuffix(s.Pattern, "*"):
		return strings.HasPrefix(need.Resource, strings.TrimSuffix(s.Pattern, "*"))
	default:
		return s.Pattern == need.Resource
	}
}

// ParseScopes parses a key's scopes, dropping duplicates. A key needs at
// least one.
func ParseScopes(list []string) ([]Scope, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("a key needs at least one scope, such as read, admin or publish:HUB")
	}
	var out []Scope
	for _, s := range list {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// anyAllows reports whether one of scopes grants need.
func anyAllows(scopes []Scope, need Need) bool {
	return slices.ContainsFunc(scopes, func(s Scope) bool { return s.Allows(need) })
}
