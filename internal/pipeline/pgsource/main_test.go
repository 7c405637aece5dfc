package pgsource_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run's connections and their context watchers must all be gone once it
// returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
