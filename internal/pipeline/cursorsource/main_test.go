package cursorsource_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run's connections (and database/sql's opener) must all be gone once it
// returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
