package host

// Stopping reports whether Stop has begun: from then on, no new batch or
// message is taken. Tests wait for it instead of sleeping after calling
// Stop in another goroutine.
func (h *Host) Stopping() bool { return h.stopping() }
