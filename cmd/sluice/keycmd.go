package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/gateway"
)

func keyCommands() []command {
	return []command{
		{"create", "create an API key with scopes; its secret is printed once", keyCreate},
		{"list", "list the API keys (never their secrets)", keyList},
		{"revoke", "revoke an API key by id or name: it stops working at once", keyRevoke},
	}
}

func runKey(args []string) error {
	return runVerbs("key", `Manage API keys. Once a key exists, every request to the HTTP API (but
/healthz and /readyz) needs a key whose scopes allow it, on every instance:

  admin                 everything, keys included
  read                  every GET, document queries, /metrics
  publish:HUB           publish events to a hub
  send:QUEUE            send messages to a queue
  receive:QUEUE         receive, complete, abandon and renew a queue's messages
  docs:CONTAINER        write documents of a container
  blobs:CONTAINER       write and delete blobs of a blob container
  replay:HUB            move a hub's consumer-group checkpoints
  deadletters           redrive and purge dead letters
  breakers              open and close circuit breakers

A resource may be a prefix ending in * (publish:orders-*) or * for all.
Clients send a key as "Authorization: Bearer <key>" or in the X-Sluice-Key
header; the CLI takes SLUICE_KEY or --api-key.

The commands talk to a running server (--server; admin scope needed once
keys exist), or, with --data-dir or --nats-url, to the store directly: that
is how the first key of a server that is stopped is made.`, keyCommands(), args)
}

// keyTarget is where key commands act: a running server, or the store.
type keyTarget struct {
	c       *client
	dataDir string
	natsURL string
}

func keyTargetFlags(fs *flag.FlagSet) *keyTarget {
	t := &keyTarget{c: clientFlags(fs)}
	fs.StringVar(&t.dataDir, "data-dir", "", "act on the keys of this data directory directly, with its server stopped")
	fs.StringVar(&t.natsURL, "nats-url", "", "act on the keys of this NATS server or cluster directly (the servers may be running; credentials from the URL or SLUICE_NATS_TOKEN, SLUICE_NATS_USER/SLUICE_NATS_PASSWORD, SLUICE_NATS_CA)")
	return t
}

func (t *keyTarget) direct() bool { return t.dataDir != "" || t.natsURL != "" }

// withKeys opens the keys in the store and runs fn.
func (t *keyTarget) withKeys(fn func(ctx context.Context, k *auth.Keys) error) error {
	if t.dataDir != "" && t.natsURL != "" {
		return usagef("give --data-dir or --nats-url, not both")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An external server's credentials come from the environment, as
	// sluice serve takes them (or inside the URL).
	cfg := engine.Config{URL: t.natsURL, DataDir: t.dataDir, Name: "sluice key",
		User: os.Getenv("SLUICE_NATS_USER"), Password: os.Getenv("SLUICE_NATS_PASSWORD"), Token: os.Getenv("SLUICE_NATS_TOKEN"),
		TLSCert: os.Getenv("SLUICE_NATS_TLS_CERT"), TLSKey: os.Getenv("SLUICE_NATS_TLS_KEY"), TLSCA: os.Getenv("SLUICE_NATS_CA")}
	if t.dataDir != "" {
		cfg.User, cfg.Password, cfg.Token, cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = "", "", "", "", "", ""
	}
	if t.dataDir != "" {
		lock, err := datadir.Acquire(t.dataDir, "sluice key")
		if errors.Is(err, datadir.ErrInUse) {
			return fmt.Errorf("%w\n(the server is running: manage keys through it, without --data-dir)", err)
		}
		if err != nil {
			return err
		}
		defer lock.Unlock()
	}
	eng, err := engine.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	kv, err := auth.OpenKeysBucket(ctx, eng.JS)
	if err != nil {
		return err
	}
	keys, err := auth.OpenKeys(ctx, kv, auth.KeysOptions{})
	if err != nil {
		return err
	}
	return errors.Join(fn(ctx, keys), keys.Stop(ctx))
}

func keyCreate(args []string) error {
	fs := flagSet("key create", "sluice key create --name NAME --scope SCOPE [--scope SCOPE...] [flags]", `
Create an API key. Its secret is printed once and never stored (only its
SHA-256 is): keep it now. See 'sluice key --help' for the scopes.

Examples:
  sluice key create --name ci --scope publish:telemetry --scope read
  sluice key create --name ops --scope admin --expires 720h
  sluice key create --name admin --scope admin --data-dir sluice-data   # server stopped`)
	t := keyTargetFlags(fs)
	name := fs.String("name", "", "who uses the key, such as ci or dashboard (required)")
	var scopes multiFlag
	fs.Var(&scopes, "scope", "a permission of the key (repeatable; see sluice key --help)")
	expires := fs.Duration("expires", 0, "the key stops working this long after creation, e.g. 720h (default: never)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q: give the name with --name", pos[0])
	case *name == "":
		return usagef("give the key a name with --name, such as --name ci")
	case len(scopes) == 0:
		return usagef("give at least one --scope, such as --scope read or --scope publish:HUB")
	case *expires < 0:
		return usagef("--expires %s: give a positive duration", *expires)
	}
	if _, err := auth.ParseScopes(scopes); err != nil {
		return usageError{err.Error()}
	}
	var out gateway.CreateKeyResponse
	if t.direct() {
		err = t.withKeys(func(ctx context.Context, k *auth.Keys) error {
			key, token, err := k.Create(ctx, auth.CreateOptions{Name: *name, Scopes: scopes, TTL: *expires, CreatedBy: "cli"})
			out = gateway.CreateKeyResponse{KeyJSON: gateway.ToKeyJSON(key, time.Now()), Key: token}
			return err
		})
	} else {
		req := gateway.CreateKeyRequest{Name: *name, Scopes: scopes}
		if *expires > 0 {
			req.Expires = expires.String()
		}
		_, err = t.c.do("POST", "/api/v1/keys", nil, "application/json", jsonBody(req), &out)
		err = t.hint(err)
	}
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(out)
	t.c.print(append(raw, '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created key %s (id %s) with scopes %s", out.Name, out.ID, strings.Join(out.Scopes, ", "))
		if !out.Expires.IsZero() {
			fmt.Fprintf(w, ", expiring %s", out.Expires.Local().Format(time.DateTime))
		}
		fmt.Fprintf(w, "\n\n  %s\n\nThis is the only time the key is shown: keep it now. Clients send it as\n'Authorization: Bearer <key>'; the CLI reads it from SLUICE_KEY.\n", out.Key)
	})
	return nil
}

// hint adds what to do to the errors a key command meets on a server.
func (t *keyTarget) hint(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 404 {
		return fmt.Errorf("%w\n(this server has no key management: is it an older sluice?)", err)
	}
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("%w\n(with the server stopped, act on its data directory instead: add --data-dir DIR)", err)
	}
	return err
}

func keyList(args []string) error {
	fs := flagSet("key list", "sluice key list [flags]", `
List the API keys: id, name, scopes, creation, expiry and last use (written
at most once a minute). Secrets are never shown: they are not stored.`)
	t := keyTargetFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Keys []gateway.KeyJSON `json:"keys"`
	}
	var raw []byte
	var err error
	if t.direct() {
		err = t.withKeys(func(ctx context.Context, k *auth.Keys) error {
			out.Keys = []gateway.KeyJSON{}
			for _, key := range k.List() {
				out.Keys = append(out.Keys, gateway.ToKeyJSON(key, time.Now()))
			}
			raw, _ = json.Marshal(out)
			raw = append(raw, '\n')
			return nil
		})
	} else {
		raw, err = t.c.do("GET", "/api/v1/keys", nil, "", nil, &out)
		err = t.hint(err)
	}
	if err != nil {
		return err
	}
	t.c.print(raw, func(w *tabwriter.Writer) {
		if len(out.Keys) == 0 {
			fmt.Fprintln(stderr, "no API keys: the HTTP API is open to clients on this machine (create one with sluice key create)")
			return
		}
		fmt.Fprintln(w, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED")
		for _, k := range out.Keys {
			expires := "never"
			if !k.Expires.IsZero() {
				expires = timeText(k.Expires)
				if k.Expired {
					expires += " (expired)"
				}
			}
			last := "never"
			if !k.LastUsed.IsZero() {
				last = timeText(k.LastUsed)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), timeText(k.Created), expires, last)
		}
	})
	return nil
}

func keyRevoke(args []string) error {
	fs := flagSet("key revoke", "sluice key revoke ID_OR_NAME [flags]", `
Revoke an API key: it stops working at once on the instance that revokes
it, and on the others as soon as they hear of it (milliseconds).

  sluice key revoke ci`)
	t := keyTargetFlags(fs)
	name, err := parseName(fs, args, "key id or name")
	if err != nil {
		return err
	}
	var out gateway.KeyJSON
	if t.direct() {
		err = t.withKeys(func(ctx context.Context, k *auth.Keys) error {
			key, err := k.Revoke(ctx, name)
			out = gateway.ToKeyJSON(key, time.Now())
			return err
		})
	} else {
		_, err = t.c.do("DELETE", "/api/v1/keys/"+url.PathEscape(name), nil, "", nil, &out)
		err = t.hint(err)
	}
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(out)
	t.c.print(append(raw, '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "revoked key %s (id %s)\n", out.Name, out.ID)
	})
	return nil
}
