package main

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"time"
)

// runHealth asks an instance whether it is ready (GET /readyz) or alive
// (GET /healthz) and exits 0 or 1. It exists for container health checks:
// the image holds the sluice binary and nothing else, so no curl or wget.
func runHealth(args []string) error {
	fs := flagSet("health", "sluice health [flags]", `
Ask a running instance whether it is ready (GET /readyz: started, and its
engine answers) or, with --live, whether it is alive (GET /healthz). Prints
the answer and exits 0 when healthy, 1 otherwise. Neither route needs an
API key. Meant for container health checks, since the image has no curl:

  HEALTHCHECK CMD ["/sluice", "health"]`)
	c := &client{http: &http.Client{}}
	fs.StringVar(&c.base, "server", cmp.Or(os.Getenv("SLUICE_SERVER"), defaultServer),
		"URL of the instance, or its host:port for http (env SLUICE_SERVER)")
	fs.StringVar(&c.caFile, "cacert", os.Getenv("SLUICE_CACERT"), "PEM file of the CA that signed an https --server's certificate (env SLUICE_CACERT; default: the system's)")
	live := fs.Bool("live", false, "ask /healthz (the process answers) instead of /readyz (ready for work)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("sluice health takes no arguments, got %q", pos[0])
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: give a positive duration", *timeout)
	}
	c.http.Timeout = *timeout
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	var answer struct {
		Status string `json:"status"`
	}
	if _, err := c.do(http.MethodGet, path, nil, "", nil, &answer); err != nil {
		return err
	}
	fmt.Fprintln(stdout, cmp.Or(answer.Status, "ok"))
	return nil
}
