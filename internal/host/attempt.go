package host

import "context"

// Attempt is what an invocation knows of its tries: the number of this one
// (1 for the first), the retries its policy allows (-1: forever; 0: none),
// and the error of the previous try (nil on the first, and for queue
// messages, whose deliveries do not carry it).
type Attempt struct {
	Number     int
	MaxRetries int
	Last       error
}

type attemptKey struct{}

func withAttempt(ctx context.Context, a Attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// AttemptOf returns the attempt an invocation's context carries.
func AttemptOf(ctx context.Context) (Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(Attempt)
	return a, ok
}
