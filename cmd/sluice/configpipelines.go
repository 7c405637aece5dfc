package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

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

// pipelinesSection reads the pipelines section: each entry is a
// sluice.PipelineSpec (the shape sluice pipeline create takes too),
// checked strictly, with its environment variables read here.
func pipelinesSection(n *yaml.Node, problems []string) (map[string]sluice.PipelineConfig, []string) {
	out := map[string]sluice.PipelineConfig{}
	problems = append(problems, entries(n, "pipelines", func(name string, v *yaml.Node) error {
		where := "pipelines." + name
		if err := checkKeys(v, where, []string{"postgres", "sql", "http", "container", "retention", "batchSize", "destinations"}); err != nil {
			return err
		}
		if mappingValue(v, "destinations") == nil {
			return fmt.Errorf("%s: line %d: give its destinations", where, v.Line)
		}
		var raw any
		if err := v.Decode(&raw); err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		data, err := json.Marshal(raw)
		if err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		spec, err := sluice.DecodePipelineSpec(data)
		if err != nil {
			return fmt.Errorf("%s (line %d): %s", where, v.Line, strings.TrimPrefix(err.Error(), "sluice: pipeline: the pipeline's definition: "))
		}
		pc, err := spec.Config(os.Getenv)
		if err != nil {
			return fmt.Errorf("%s.%v", where, err)
		}
		out[name] = pc
		return nil
	})...)
	return out, problems
}
