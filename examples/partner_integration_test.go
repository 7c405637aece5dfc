package examples_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
)

// receivedJSON is what the example's partner endpoint reports.
type receivedJSON struct {
	Applied map[string][]struct {
		OrderID, Buyer, Status string
		Total                  float64
	} `json:"applied"`
	Posts         int `json:"posts"`
	Repeats       int `json:"repeats"`
	BadSignatures int `json:"bad_signatures"`
	RefusedDown   int `json:"refused_while_down"`
}

func (r receivedJSON) count() int {
	n := 0
	for _, l := range r.Applied {
		n += len(l)
	}
	return n
}

// TestPartnerIntegration runs examples/partner-integration as its README
// does: ACME's XML and Globex's JSON orders, some invalid, through
// validation and transforms, the business step, the container and (when
// PostgreSQL is there) the SQL table, to signed confirmations at the
// partners' endpoint; then the endpoint goes down, the confirmations are
// parked, and once it is back they arrive, in order per buyer, each
// applied once.
func TestPartnerIntegration(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	bin := t.TempDir()
	cli := filepath.Join(bin, "sluice")
	goBuild(t, root, cli, "./cmd/sluice")
	example := filepath.Join(bin, "partner-integration")
	goBuild(t, root, example, "./examples/partner-integration")
	data := t.TempDir()

	partnerAddr := freeAddr(t)
	partnerURL := "http://" + partnerAddr
	startProc(t, "partner endpoint", example, "partner", "--addr", partnerAddr).waitOK(partnerURL + "/")
	api := "http://" + freeAddr(t)
	args := []string{"--data-dir", data, "--http", strings.TrimPrefix(api, "http://"), "--partner-url", partnerURL}
	var db *sql.DB
	table := fmt.Sprintf("partner_orders_%d", os.Getpid())
	if dsn := os.Getenv("SLUICE_TEST_POSTGRES"); dsn != "" {
		var err error
		db, err = sql.Open("pgx", dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table); db.Close() })
		args = append(args, "--postgres", dsn, "--table", table)
	} else {
		t.Log("SLUICE_TEST_POSTGRES is not set: the SQL table part is left out")
	}
	startProc(t, "instance", example, args...).waitOK(api + "/readyz")
	tokens := filepath.Join(data, "partner-tokens.json")

	send := func(from, n int) (accepted, rejected int) {
		t.Helper()
		var out struct{ Accepted, Rejected int }
		raw := runCLI(t, example, "send", "--server", api, "--tokens", tokens, "--from", fmt.Sprint(from),
			"--orders", fmt.Sprint(n), "--invalid-every", "5", "--json")
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
		return out.Accepted, out.Rejected
	}
	received := func() receivedJSON {
		t.Helper()
		resp, err := http.Get(partnerURL + "/received")
		require.NoError(t, err)
		defer resp.Body.Close()
		var r receivedJSON
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r
	}

	// 40 orders, every fifth invalid: ACME's 5, 15, 25, 35 break its XSD,
	// Globex's 10, 20, 30, 40 its JSON Schema.
	accepted, rejected := send(1, 40)
	require.Equal(t, 32, accepted)
	require.Equal(t, 8, rejected)
	eventually(t, "32 confirmations at the partners", func() error {
		if n := received().count(); n != 32 {
			return fmt.Errorf("%d applied", n)
		}
		return nil
	})
	var rej []struct {
		Stage    string
		Problems []struct{ Location, Reason string }
	}
	raw := runCLI(t, cli, "partner", "rejections", "acme", "--server", api, "--json")
	var rejOut struct {
		Rejections json.RawMessage `json:"rejections"`
	}
	require.NoError(t, json.Unmarshal(raw, &rejOut))
	require.NoError(t, json.Unmarshal(rejOut.Rejections, &rej))
	require.Len(t, rej, 4)
	require.Equal(t, "schema", rej[0].Stage)
	require.Contains(t, rej[0].Problems[0].Location, "/PurchaseOrder/Line[1]/Qty")

	// The orders are in the container, and in the SQL table.
	var page struct{ Documents []json.RawMessage }
	raw = runCLI(t, cli, "docs", "query", "orders", "SELECT * FROM c", "--max", "100", "--server", api, "--json")
	require.NoError(t, json.Unmarshal(raw, &page), "%s", raw)
	require.Len(t, page.Documents, 32)
	if db != nil {
		var n int
		var total float64
		require.NoError(t, db.QueryRowContext(context.Background(), "SELECT count(*), sum(total) FROM "+table).Scan(&n, &total))
		require.Equal(t, 32, n)
		require.InDelta(t, 16*3.45+16*10.0, total, 0.001, "ACME orders are 3.45 each, Globex's 10.00")
	}

	// The partners' endpoint goes down: confirmations are parked.
	postOK204(t, partnerURL+"/down")
	accepted2, _ := send(41, 30)
	eventually(t, "confirmations parked while the partner is down", func() error {
		var out struct{ Count int }
		raw := runCLI(t, cli, "partner", "deliveries", "--server", api, "--json")
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		if out.Count == 0 || received().RefusedDown == 0 {
			return fmt.Errorf("%d parked", out.Count)
		}
		return nil
	})
	postOK204(t, partnerURL+"/up")
	eventually(t, "every confirmation at the partners once it is back", func() error {
		if n := received().count(); n != 32+accepted2 {
			return fmt.Errorf("%d of %d applied", n, 32+accepted2)
		}
		return nil
	})

	r := received()
	require.Zero(t, r.BadSignatures, "every confirmation is signed")
	seen := map[string]bool{}
	for p, list := range r.Applied {
		last := map[string]string{}
		for _, c := range list {
			require.False(t, seen[c.OrderID], "order %s confirmed twice", c.OrderID)
			seen[c.OrderID] = true
			require.Greater(t, c.OrderID, last[c.Buyer], "partner %s: buyer %s's confirmations out of order", p, c.Buyer)
			last[c.Buyer] = c.OrderID
		}
	}
	var logOut struct {
		Deliveries []struct{ Outcome string }
	}
	require.NoError(t, json.Unmarshal(runCLI(t, cli, "partner", "log", "globex", "--limit", "500", "--server", api, "--json"), &logOut))
	outcomes := map[string]int{}
	for _, d := range logOut.Deliveries {
		outcomes[d.Outcome]++
	}
	require.Positive(t, outcomes["retry"], "the log shows the failed attempts: %v", outcomes)
	require.Positive(t, outcomes["delivered"], "%v", outcomes)
	t.Logf("%d posts for %d confirmations; %d refused while down; %d repeats applied once", r.Posts, r.count(), r.RefusedDown, r.Repeats)
}

func postOK204(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "POST %s", url)
}
