package main

import (
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice"
)

// The pipelines section of sluice.yaml declares data pipelines as
// App.Pipeline does. Database URLs with passwords come from environment
// variables named in the file (urlEnv), never from the file.
//
//	pipelines:
//	  crm:
//	    sql:
//	      urlEnv: CRM_DATABASE_URL
//	      tables:
//	        - {name: customers, cursor: updated_at, softDelete: deleted_at}
//	    destinations:
//	      events: {hub: customer-changes}
//	  orders:
//	    postgres:
//	      urlEnv: ORDERS_DATABASE_URL
//	      tables: [public.orders, public.order_lines]
//	    retention: 168h
//	    destinations:
//	      reporting:
//	        sql: {urlEnv: REPORTING_DATABASE_URL, createTables: true}
//	      events:
//	        hub: order-changes
//	      copy:
//	        container: orders-copy
//	        retryBackoff: 1s
//	        maxRetryBackoff: 1m

type pipelineYAML struct {
	Postgres *struct {
		URL    string   `yaml:"url"`
		URLEnv string   `yaml:"urlEnv"`
		Tables []string `yaml:"tables"`
	} `yaml:"postgres"`
	SQL *struct {
		URL          string   `yaml:"url"`
		URLEnv       string   `yaml:"urlEnv"`
		PollInterval duration `yaml:"pollInterval"`
		Lag          duration `yaml:"lag"`
		Tables       []struct {
			Name        string `yaml:"name"`
			Cursor      string `yaml:"cursor"`
			SoftDelete  string `yaml:"softDelete"`
			FullRefresh bool   `yaml:"fullRefresh"`
		} `yaml:"tables"`
	} `yaml:"sql"`
	Container string   `yaml:"container"`
	Retention duration `yaml:"retention"`
	BatchSize int      `yaml:"batchSize"`
}

type destinationYAML struct {
	SQL *struct {
		URL          string            `yaml:"url"`
		URLEnv       string            `yaml:"urlEnv"`
		Tables       map[string]string `yaml:"tables"`
		CreateTables bool              `yaml:"createTables"`
	} `yaml:"sql"`
	Hub             string      `yaml:"hub"`
	Container       string      `yaml:"container"`
	RetryBackoff    duration    `yaml:"retryBackoff"`
	MaxRetryBackoff duration    `yaml:"maxRetryBackoff"`
	Breaker         *breakerYML `yaml:"breaker"`
}

type breakerYML struct {
	FailureThreshold    int      `yaml:"failureThreshold"`
	Window              duration `yaml:"window"`
	ConsecutiveFailures int      `yaml:"consecutiveFailures"`
	CoolDown            duration `yaml:"coolDown"`
	MaxCoolDown         duration `yaml:"maxCoolDown"`
}

var breakerKeys = []string{"failureThreshold", "window", "consecutiveFailures", "coolDown", "maxCoolDown"}

// urlFrom is a URL given in the file or, better, by an environment
// variable the file names.
func urlFrom(url, env, where string) (string, error) {
	switch {
	case url != "" && env != "":
		return "", fmt.Errorf("%s: give url or urlEnv, not both", where)
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s (urlEnv) is not set", where, env)
		}
		return v, nil
	case url == "":
		return "", fmt.Errorf("%s: give the database's URL (urlEnv: the environment variable that holds it, or url)", where)
	}
	return url, nil
}

func pipelinesSection(n *yaml.Node, problems []string) (map[string]sluice.PipelineConfig, []string) {
	out := map[string]sluice.PipelineConfig{}
	problems = append(problems, entries(n, "pipelines", func(name string, v *yaml.Node) error {
		where := "pipelines." + name
		if err := checkKeys(v, where, []string{"postgres", "sql", "container", "retention", "batchSize", "destinations"}); err != nil {
			return err
		}
		if sq := mappingValue(v, "sql"); sq != nil {
			if err := checkKeys(sq, where+".sql", []string{"url", "urlEnv", "pollInterval", "lag", "tables"}); err != nil {
				return err
			}
			if ts := mappingValue(sq, "tables"); ts != nil && ts.Kind == yaml.SequenceNode {
				for _, tn := range ts.Content {
					if err := checkKeys(tn, where+".sql.tables", []string{"name", "cursor", "softDelete", "fullRefresh"}); err != nil {
						return err
					}
				}
			}
		}
		if pg := mappingValue(v, "postgres"); pg != nil {
			if err := checkKeys(pg, where+".postgres", []string{"url", "urlEnv", "tables"}); err != nil {
				return err
			}
		}
		var py pipelineYAML
		if err := v.Decode(&py); err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		pc := sluice.PipelineConfig{Container: py.Container, Retention: time.Duration(py.Retention), BatchSize: py.BatchSize}
		if py.Postgres != nil {
			url, err := urlFrom(py.Postgres.URL, py.Postgres.URLEnv, where+".postgres")
			if err != nil {
				return err
			}
			pc.Postgres = &sluice.PostgresSource{URL: url, Tables: py.Postgres.Tables}
		}
		if py.SQL != nil {
			url, err := urlFrom(py.SQL.URL, py.SQL.URLEnv, where+".sql")
			if err != nil {
				return err
			}
			pc.SQL = &sluice.SQLSource{URL: url, PollInterval: time.Duration(py.SQL.PollInterval), Lag: time.Duration(py.SQL.Lag)}
			for _, t := range py.SQL.Tables {
				pc.SQL.Tables = append(pc.SQL.Tables, sluice.SQLSourceTable{Name: t.Name, Cursor: t.Cursor, SoftDelete: t.SoftDelete, FullRefresh: t.FullRefresh})
			}
		}
		dests := mappingValue(v, "destinations")
		if dests == nil {
			return fmt.Errorf("%s: line %d: give its destinations", where, v.Line)
		}
		if errs := entries(dests, where+".destinations", func(dname string, dv *yaml.Node) error {
			dwhere := where + ".destinations." + dname
			if err := checkKeys(dv, dwhere, []string{"sql", "hub", "container", "retryBackoff", "maxRetryBackoff", "breaker"}); err != nil {
				return err
			}
			if s := mappingValue(dv, "sql"); s != nil {
				if err := checkKeys(s, dwhere+".sql", []string{"url", "urlEnv", "tables", "createTables"}); err != nil {
					return err
				}
			}
			if b := mappingValue(dv, "breaker"); b != nil {
				if err := checkKeys(b, dwhere+".breaker", breakerKeys); err != nil {
					return err
				}
			}
			var dy destinationYAML
			if err := dv.Decode(&dy); err != nil {
				return fmt.Errorf("%s: %v", dwhere, err)
			}
			d := sluice.PipelineDestination{Name: dname, Hub: dy.Hub, Container: dy.Container,
				RetryBackoff: time.Duration(dy.RetryBackoff), MaxRetryBackoff: time.Duration(dy.MaxRetryBackoff)}
			if dy.SQL != nil {
				url, err := urlFrom(dy.SQL.URL, dy.SQL.URLEnv, dwhere+".sql")
				if err != nil {
					return err
				}
				d.SQL = &sluice.SQLDestination{URL: url, Tables: dy.SQL.Tables, CreateTables: dy.SQL.CreateTables}
			}
			if b := dy.Breaker; b != nil {
				d.Breaker = sluice.BreakerPolicy{FailureThreshold: b.FailureThreshold, Window: time.Duration(b.Window),
					ConsecutiveFailures: b.ConsecutiveFailures, CoolDown: time.Duration(b.CoolDown), MaxCoolDown: time.Duration(b.MaxCoolDown)}
			}
			pc.Destinations = append(pc.Destinations, d)
			return nil
		}); len(errs) > 0 {
			return fmt.Errorf("%s", errs[0])
		}
		out[name] = pc
		return nil
	})...)
	return out, problems
}
