package httpsink

import (
	"testing"

	"go.uber.org/goleak"
)

// Connections of the sinks' clients and the test servers may not outlive
// the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
