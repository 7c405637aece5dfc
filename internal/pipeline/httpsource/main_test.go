package httpsource_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run's requests and timers must all be gone once it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
