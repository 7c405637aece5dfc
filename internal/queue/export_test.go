package queue

import "context"

// Sweep removes a queue's completed messages now, as its sweeper does after
// completions: a test that checks what a sweep leaves runs one rather than
// sleeping until the sweeper has.
func Sweep(ctx context.Context, s *Service, name string) error {
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	st.releaseMu.Lock()
	defer st.releaseMu.Unlock()
	return s.sweep(ctx, st)
}
