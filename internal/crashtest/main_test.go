package crashtest

import (
	"os"
	"testing"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) {
	enginetest.RunNodeIfAsked() // the cluster tests' NATS nodes are this binary
	os.Exit(m.Run())
}
