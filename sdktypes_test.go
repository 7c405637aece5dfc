package sluice

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// TestSDKOwnsItsTypes: the public types are declared here, not aliases of
// internal ones (whose fields go doc would hide and whose changes would
// silently change the SDK).
func TestSDKOwnsItsTypes(t *testing.T) {
	for _, v := range []any{
		Document{}, QueryRequest{}, QueryPage{}, DocumentKey{}, BlobInfo{}, BlobMeta{}, BreakerEvent{},
		BreakerStatus{}, BreakerTransition{}, BreakerState(""), DeadLetterRecord{}, DeadLetterSource{},
		RetryPolicy{}, BreakerPolicy{}, TimerInfo{}, Event{}, Message{}, Blob{},
	} {
		typ := reflect.TypeOf(v)
		require.Equal(t, "github.com/sluicehq/sluice", typ.PkgPath(), "%v is declared elsewhere", typ)
	}
}

// sameJSON checks that what the platform writes as internal decodes into
// the public type with nothing left over, and encodes back the same.
func sameJSON[Public any](t *testing.T, internal any) {
	t.Helper()
	b, err := json.Marshal(internal)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var pub Public
	require.NoError(t, dec.Decode(&pub), "%T has a field %T lacks", internal, pub)
	again, err := json.Marshal(pub)
	require.NoError(t, err)
	require.JSONEq(t, string(b), string(again), "%T and %T encode differently", internal, pub)
}

func TestSDKTypesReadWhatThePlatformWrites(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	until := at.Add(time.Minute)
	// A breaker transition's event, as published on BreakerEventsHub and
	// POSTed to the webhook.
	sameJSON[BreakerEvent](t, host.BreakerEvent{Type: "breaker.opened", Function: "f", From: resilience.Closed,
		To: resilience.Open, Reason: "r", By: "i", At: at, Until: &until})
	// A dead letter, every field set.
	sameJSON[DeadLetterRecord](t, deadletter.Letter{DeadLetterQueue: "q", ID: 7, Function: "f", Reason: "r",
		Source: deadletter.Source{Kind: "hub", Hub: "h", Group: "g", Partition: 1, Sequence: 2, PartitionKey: "k",
			Queue: "q", MessageID: 3, EnqueuedTime: at, Container: "c", DocumentID: "d", LSN: 4, Deleted: true, Blob: "b", ETag: "e"},
		Attempts: 3, FirstFailure: at, LastFailure: until, State: json.RawMessage(`{"s":1}`), Redriven: 1,
		Body: []byte("body"), Properties: map[string]string{"p": "v"}})
	// Policies as host.json and the API spell them.
	sameJSON[RetryPolicy](t, resilience.Retry{Strategy: resilience.ExponentialBackoff, MaxRetryCount: 3, Delay: 1,
		MinInterval: 2, MaxInterval: 3, Jitter: 0.5})
	sameJSON[BreakerPolicy](t, resilience.BreakerPolicy{FailureThreshold: 1, Window: 2, ConsecutiveFailures: 3, CoolDown: 4, MaxCoolDown: 5})
}

// TestBreakerStatusConversion: every public field of a breaker's status is
// filled from the shared state.
func TestBreakerStatusConversion(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	policy := resilience.BreakerPolicy{ConsecutiveFailures: 5}
	st, err := breakerStatus(resilience.Status{
		Record: resilience.Record{Function: "f", State: resilience.Open, Since: at, Until: at.Add(time.Minute), Reason: "r",
			Manual: true, FailedProbes: 2, By: "i", History: []resilience.Transition{{At: at, From: resilience.Closed, To: resilience.Open, Reason: "r", By: "i"}}},
		Policy: &policy, Failures: 9, Run: 4,
	}, nil)
	require.NoError(t, err)
	require.Equal(t, BreakerStatus{Function: "f", State: BreakerOpen, Since: at, Until: at.Add(time.Minute), Reason: "r",
		Manual: true, FailedProbes: 2, By: "i", History: []BreakerTransition{{At: at, From: BreakerClosed, To: BreakerOpen, Reason: "r", By: "i"}},
		Policy: &BreakerPolicy{ConsecutiveFailures: 5}, Failures: 9, Consecutive: 4}, st)
	v := reflect.ValueOf(st)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "BreakerStatus.%s is not filled", v.Type().Field(i).Name)
	}
}
