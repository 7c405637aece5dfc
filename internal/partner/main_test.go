package partner

import (
	"testing"

	"go.uber.org/goleak"
)

// The registry follows its bucket and flushes token uses in goroutines of
// its own: none may outlive Stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
