// Package enginetest runs tests against every engine available: the embedded
// server always, and the external NATS server named by SLUICE_TEST_NATS_URL
// when it is set (CI sets it). Cluster starts a real NATS cluster of separate
// server processes for tests that kill, stop and restart nodes; a package
// that uses it calls RunNodeIfAsked first in its TestMain.
package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/sluicehq/sluice/internal/engine"
)

// EnvURL names the environment variable holding the external server's URL.
const EnvURL = "SLUICE_TEST_NATS_URL"

// EnvCurrentURL names an external server of a current release, used by
// EachSince when the one at EnvURL is too old (CI runs Debian's older
// nats-server at EnvURL, and the release Sluice embeds here).
const EnvCurrentURL = "SLUICE_TEST_NATS_CURRENT_URL"

// Embedded starts an embedded engine in a temporary data directory, closed
// when the test ends.
func Embedded(t testing.TB) *engine.Engine {
	t.Helper()
	eng, err := engine.Start(context.Background(), engine.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded engine: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// Each runs fn as a subtest on each available engine: "embedded", and
// "external" when SLUICE_TEST_NATS_URL is set. Tests on the external server
// share it, so they must use unique names (see Name).
func Each(t *testing.T, fn func(t *testing.T, eng *engine.Engine)) {
	t.Helper()
	EachSince(t, "", fn)
}

// EachSince is Each for features of newer servers: the external run is
// skipped, saying why, when that server is older than version.
func EachSince(t *testing.T, version string, fn func(t *testing.T, eng *engine.Engine)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, Embedded(t))
	})
	t.Run("external", func(t *testing.T) {
		t.Parallel()
		var tooOld []string
		for _, env := range []string{EnvURL, EnvCurrentURL} {
			url := os.Getenv(env)
			if url == "" {
				continue
			}
			eng, err := engine.Start(context.Background(), engine.Config{URL: url})
			if err != nil {
				t.Fatalf("connect to %s (%s): %v", engine.RedactURL(url), env, err)
			}
			t.Cleanup(func() { _ = eng.Close() })
			if v := eng.Conn.ConnectedServerVersion(); version != "" && !engine.VersionAtLeast(v, version) {
				tooOld = append(tooOld, engine.RedactURL(url)+" is "+v)
				continue
			}
			fn(t, eng)
			return
		}
		if len(tooOld) > 0 {
			t.Skipf("this needs NATS %s or newer: %v", version, tooOld)
		}
		t.Skipf("%s is not set: skipping the external NATS run", EnvURL)
	})
}

// Name returns prefix followed by a random suffix, for names that must not
// collide with other tests or earlier runs on a shared server.
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
