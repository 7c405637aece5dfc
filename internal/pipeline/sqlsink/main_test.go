package sqlsink

import (
	"testing"

	"go.uber.org/goleak"
)

// Pools and their connections' goroutines may not outlive Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
