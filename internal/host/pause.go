package host

import (
	"sync"
	"sync/atomic"
)

// pauseSwitch is a consumer group's pause state as this instance last saw
// it. The group's partition loops read it before every batch, without a
// lock, and wait on its channel for the next change.
type pauseSwitch struct {
	mu  sync.Mutex // orders set calls
	cur atomic.Pointer[pauseState]
}

// pauseState is one state of a pauseSwitch; changed is closed when the
// next one replaces it.
type pauseState struct {
	paused  bool
	changed chan struct{}
}

func newPauseSwitch() *pauseSwitch {
	s := &pauseSwitch{}
	s.cur.Store(&pauseState{changed: make(chan struct{})})
	return s
}

// set records whether the group is paused; a change closes the channel
// state handed out.
func (s *pauseSwitch) set(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	if old.paused == paused {
		return
	}
	s.cur.Store(&pauseState{paused: paused, changed: make(chan struct{})})
	close(old.changed)
}

// state returns whether the group is paused, and a channel closed when
// that changes.
func (s *pauseSwitch) state() (paused bool, changed <-chan struct{}) {
	st := s.cur.Load()
	return st.paused, st.changed
}
