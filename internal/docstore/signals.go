package docstore

import "sync"

// Signals wakes change-feed readers: Wait returns a channel per container
// that Notify closes. The zero value is ready to use.
type Signals struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// Wait returns a channel closed at the container's next Notify.
func (s *Signals) Wait(container string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.ch[container]
	if ch == nil {
		if s.ch == nil {
			s.ch = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		s.ch[container] = ch
	}
	return ch
}

// Notify wakes the container's waiters.
func (s *Signals) Notify(container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.ch[container]; ch != nil {
		close(ch)
		delete(s.ch, container)
	}
}

// NotifyAll wakes every waiter (when changes may have been missed).
func (s *Signals) NotifyAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ch := range s.ch {
		close(ch)
		delete(s.ch, name)
	}
}
