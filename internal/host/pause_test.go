package host

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestPauseSwitchSignalsChangesOnly(t *testing.T) {
	t.Parallel()
	s := newPauseSwitch()
	paused, running := s.state()
	require.False(t, paused, "a group runs until told otherwise")

	s.set(false)
	require.False(t, closed(running), "setting the same state is no change")

	s.set(true)
	require.True(t, closed(running), "a pause closes the running state's channel")
	paused, pausedCh := s.state()
	require.True(t, paused)
	require.False(t, closed(pausedCh))

	s.set(true)
	require.False(t, closed(pausedCh))
	s.set(false)
	require.True(t, closed(pausedCh), "resuming closes the paused state's channel")
	paused, _ = s.state()
	require.False(t, paused)
}
