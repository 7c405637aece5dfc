package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/dr"
)

func TestDRCommands(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	primary := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet,
		NATSDomain: "primary", NATSLeafListen: "127.0.0.1:0"})
	primary.Hub(sluice.HubConfig{Name: "orders", Partitions: 2})
	require.NoError(t, primary.Start(ctx))
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	secondary := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet,
		NATSDomain: "secondary", NATSLeafRemote: primary.NATSLeafURL(), DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	require.NoError(t, secondary.Start(ctx))
	t.Cleanup(func() { _ = secondary.Stop(context.Background()) })
	psrv, ssrv := "http://"+primary.Addr(), "http://"+secondary.Addr()

	out, _ := runOK(t, psrv, "dr", "status")
	require.Contains(t, out, "role: primary")
	code, _, errOut := sluiceCmd(t, "dr", "failover", "--server", psrv)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not a DR secondary")

	var st dr.Status
	deadline := time.Now().Add(2 * time.Minute)
	for st.Mirrors < 2 && time.Now().Before(deadline) {
		out, _ = runOK(t, ssrv, "dr", "status", "--json")
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	require.Equal(t, dr.RoleFollowing, st.Role)
	out, _ = runOK(t, ssrv, "dr", "status")
	require.Contains(t, out, "role: secondary-following")
	require.Regexp(t, `hub-orders-1 +hub +orders/1 +true`, out)

	out, _ = runOK(t, ssrv, "dr", "failover")
	require.Contains(t, out, "recovery point: 0 messages")
	var rep dr.Report
	out, _ = runOK(t, ssrv, "dr", "failover", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.Already)
	out, _ = runOK(t, ssrv, "dr", "status")
	require.Contains(t, out, "role: promoted")
}

func TestDRSettings(t *testing.T) {
	for _, env := range []string{"SLUICE_NATS_DOMAIN", "SLUICE_NATS_LEAF_LISTEN", "SLUICE_NATS_LEAF_REMOTE", "SLUICE_DR_PRIMARY_DOMAIN"} {
		t.Setenv(env, "")
	}
	t.Setenv("SLUICE_NATS_LEAF_REMOTE", "nats-leaf://primary.example.com:7422")
	p := writeConfig(t, `
nats-domain: secondary
nats-leaf-remote: nats-leaf://ignored.example.com:7422
dr-primary-domain: primary
`)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	inst := addInstanceFlags(fs, "sluice-data")
	require.NoError(t, fs.Parse([]string{"--config", p, "--nats-leaf-listen", "127.0.0.1:7422"}))
	cfg, err := inst.config()
	require.NoError(t, err)
	require.Equal(t, "secondary", cfg.NATSDomain, "from the file")
	require.Equal(t, "primary", cfg.DRPrimaryDomain, "from the file")
	require.Equal(t, "nats-leaf://primary.example.com:7422", cfg.NATSLeafRemote, "the environment wins over the file")
	require.Equal(t, "127.0.0.1:7422", cfg.NATSLeafListen, "from the command line")
}
