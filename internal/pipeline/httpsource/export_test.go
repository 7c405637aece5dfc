package httpsource

import (
	"context"
	"time"
)

// SetSleep makes s wait with f (poll intervals and retries' waits).
func SetSleep(s *Source, f func(ctx context.Context, d time.Duration) error) { s.sleep = f }

// SetNow makes s read the time from f (for Retry-After dates).
func SetNow(s *Source, f func() time.Time) { s.now = f }

// URLID is the From of positions made under a Config.URL.
func URLID(raw string) string { return urlID(raw) }

// Sleep is the sleep a Source uses by default.
var Sleep = sleepCtx
