package sluice_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestValidateNames(t *testing.T) {
	t.Parallel()
	for name, check := range map[string]func(string) error{
		"hub": sluice.ValidateHubName, "queue": sluice.ValidateQueueName, "container": sluice.ValidateContainerName,
	} {
		require.NoError(t, check("orders-2_b"), name)
		require.ErrorContains(t, check("-orders"), name+" name", name)
		require.Error(t, check(""), name)
		require.Error(t, check("a.b"), name)
	}
	require.NoError(t, sluice.ValidateConsumerGroup("$Default"))
	require.ErrorContains(t, sluice.ValidateConsumerGroup("a b"), "consumer group")
}

func TestBlobPathParams(t *testing.T) {
	t.Parallel()
	params, err := sluice.BlobPathParams("uploads/{folder}/{name}.json")
	require.NoError(t, err)
	require.Equal(t, []string{"folder", "name"}, params)
	params, err = sluice.BlobPathParams("uploads")
	require.NoError(t, err)
	require.Empty(t, params)
	_, err = sluice.BlobPathParams("Uploads/{name}")
	require.ErrorContains(t, err, "container name")
	_, err = sluice.BlobPathParams("uploads/{a}{b}")
	require.ErrorContains(t, err, "text between them")
}

func TestParseTimeSpan(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]time.Duration{
		"00:05:00": 5 * time.Minute, "01:30": 90 * time.Minute, "1.02:00:00": 26 * time.Hour, "00:00:01.5": 1500 * time.Millisecond,
	} {
		d, err := sluice.ParseTimeSpan(s)
		require.NoError(t, err, s)
		require.Equal(t, want, d, s)
	}
	for _, s := range []string{"", "5m", "-00:00:01", "24:00:00", "00:60:00"} {
		_, err := sluice.ParseTimeSpan(s)
		require.Error(t, err, s)
	}
}
