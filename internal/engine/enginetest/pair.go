package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
)

// Domains of the engines Pair starts.
const (
	PrimaryDomain   = "primary"
	SecondaryDomain = "secondary"
)

// PairConfigs are the engine configurations of a geo-DR pair in two data
// directories: the primary (JetStream domain PrimaryDomain) accepts leaf
// nodes on a free loopback port, and the secondary's (SecondaryDomain)
// LeafRemote is left for the caller to set to the primary's LeafURL once
// it runs.
func PairConfigs(primaryDir, secondaryDir string) (primary, secondary engine.Config) {
	return engine.Config{DataDir: primaryDir, Domain: PrimaryDomain, LeafListen: "127.0.0.1:0"},
		engine.Config{DataDir: secondaryDir, Domain: SecondaryDomain}
}

// Pair starts two embedded engines paired for geo-disaster recovery, in
// temporary data directories: the secondary's server is a leaf node of the
// primary's. It returns once the leaf connection is up. Both are closed
// when the test ends (closing one earlier is fine).
func Pair(t testing.TB) (primary, secondary *engine.Engine) {
	t.Helper()
	pc, sc := PairConfigs(t.TempDir(), t.TempDir())
	primary = startEngine(t, pc)
	sc.LeafRemote = primary.LeafURL()
	secondary = startEngine(t, sc)
	WaitLeaf(t, secondary)
	return primary, secondary
}

// WaitLeaf waits until eng's embedded server has a leaf-node connection,
// for at most a minute.
func WaitLeaf(t testing.TB, eng *engine.Engine) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !eng.LeafConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the leaf-node connection between the DR pair did not come up within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	eng, err := engine.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start engine (domain %s): %v", cfg.Domain, err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}
