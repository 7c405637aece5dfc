package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// engineDown are the errors of an engine that did not answer: the
// connection is down, or a request found nobody to answer it in time.
var engineDown = []error{
	nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrReconnectBufExceeded,
	nats.ErrNoServers, nats.ErrNoResponders, nats.ErrTimeout, nats.ErrStaleConnection,
	jetstream.ErrNoStreamResponse, jetstream.ErrNoHeartbeat, jetstream.ErrServerShutdown, jetstream.ErrJetStreamNotEnabled,
	jetstream.ErrAsyncPublishTimeout, context.DeadlineExceeded,
}

// IsEngineDown reports whether err says the engine did not answer, as
// opposed to an answer (a refusal, a missing key): the errors every
// service on the engine gets, whichever made the call.
func IsEngineDown(err error) bool {
	for _, target := range engineDown {
		if errors.Is(err, target) {
			return true
		}
	}
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable && !IsStorageRefusal(err)
}

// unavailable marks err with ErrUnavailable when it says the engine did
// not answer, and returns it unchanged otherwise.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !IsEngineDown(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
