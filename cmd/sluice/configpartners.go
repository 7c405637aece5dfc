package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice"
)

// The partners and messageTypes sections of sluice.yaml declare partners
// as App.Partner does, so that the registry can live in git. Schemas and
// transforms are files, relative to the configuration file; secrets come
// from environment variables named in the file.
//
//	partners:
//	  acme:
//	    name: ACME Corp
//	    types:
//	      order:
//	        format: xml
//	        schema: schemas/order.xsd
//	        transform: maps/order-to-canonical.xsl
//	        targetFormat: json
//	        targetSchema: schemas/canonical-order.json
//	        hub: process
//	        partitionKey: .orderId
//	    endpoints:
//	      main:
//	        url: https://acme.example.com/hooks
//	        auth: hmac
//	        secretsEnv: ACME_WEBHOOK_SECRETS
//	        ordered: true
//	messageTypes:
//	  asn:
//	    format: xml
//	    hub: process
//	    partners: [acme, globex]
//	deliveries:
//	  post-to-partner:
//	    hub: post-to-partner
//	    retrySchedule: "00:00:05"
//	    breaker: {consecutiveFailures: 5, coolDown: 30s}

type typeYAML struct {
	Format       string            `yaml:"format"`
	Schema       string            `yaml:"schema"`
	Transform    string            `yaml:"transform"`
	TargetFormat string            `yaml:"targetFormat"`
	TargetSchema string            `yaml:"targetSchema"`
	Hub          string            `yaml:"hub"`
	PartitionKey string            `yaml:"partitionKey"`
	Namespaces   map[string]string `yaml:"namespaces"`
	MaxBytes     int64             `yaml:"maxBytes"`
	Partners     []string          `yaml:"partners"`
}

var typeKeys = []string{"format", "schema", "transform", "targetFormat", "targetSchema", "hub", "partitionKey", "namespaces", "maxBytes", "partners"}

type endpointYAML struct {
	URL             string   `yaml:"url"`
	Types           []string `yaml:"types"`
	Auth            string   `yaml:"auth"`
	TokenEnv        string   `yaml:"tokenEnv"`
	TokenURL        string   `yaml:"tokenURL"`
	ClientID        string   `yaml:"clientID"`
	ClientSecretEnv string   `yaml:"clientSecretEnv"`
	Scopes          []string `yaml:"scopes"`
	SecretsEnv      string   `yaml:"secretsEnv"`
	Timeout         duration `yaml:"timeout"`
	Rate            float64  `yaml:"rate"`
	Ordered         bool     `yaml:"ordered"`
	MaxAttempts     int      `yaml:"maxAttempts"`
}

var endpointKeys = []string{"url", "types", "auth", "tokenEnv", "tokenURL", "clientID", "clientSecretEnv", "scopes", "secretsEnv",
	"timeout", "rate", "ordered", "maxAttempts"}

// checkKeys refuses keys of mapping n that are not allowed.
func checkKeys(n *yaml.Node, where string, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: line %d: expected a mapping of settings", where, n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			sorted := slices.Sorted(slices.Values(allowed))
			return fmt.Errorf("%s: line %d: unknown setting %q (use %s)", where, k.Line, k.Value, strings.Join(sorted, ", "))
		}
	}
	return nil
}

// entries walks a mapping of names to settings.
func entries(n *yaml.Node, where string, fn func(name string, v *yaml.Node) error) []string {
	if n.Kind != yaml.MappingNode {
		return []string{fmt.Sprintf("line %d: %s is a mapping of names to their settings", n.Line, where)}
	}
	var problems []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if err := fn(n.Content[i].Value, n.Content[i+1]); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

func partnersSection(n *yaml.Node, dir string, problems []string) ([]sluice.PartnerConfig, []string) {
	var out []sluice.PartnerConfig
	problems = append(problems, entries(n, "partners", func(id string, v *yaml.Node) error {
		where := "partners." + id
		if err := checkKeys(v, where, []string{"name", "disabled", "types", "endpoints"}); err != nil {
			return err
		}
		pc := sluice.PartnerConfig{ID: id}
		var errs []string
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i].Value, v.Content[i+1]
			switch k {
			case "name":
				pc.Name = val.Value
			case "disabled":
				if err := val.Decode(&pc.Disabled); err != nil {
					errs = append(errs, fmt.Sprintf("%s.disabled: line %d: give true or false", where, val.Line))
				}
			case "types":
				errs = append(errs, entries(val, where+".types", func(name string, tv *yaml.Node) error {
					t, err := messageType(tv, where+".types."+name, dir)
					if len(t.Partners) > 0 {
						return fmt.Errorf("%s.types.%s: partners is for shared types (messageTypes)", where, name)
					}
					t.Name = name
					pc.Types = append(pc.Types, t)
					return err
				})...)
			case "endpoints":
				errs = append(errs, entries(val, where+".endpoints", func(name string, ev *yaml.Node) error {
					ep, err := endpoint(ev, where+".endpoints."+name)
					ep.Name = name
					pc.Endpoints = append(pc.Endpoints, ep)
					return err
				})...)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n  "))
		}
		out = append(out, pc)
		return nil
	})...)
	return out, problems
}

func messageTypesSection(n *yaml.Node, dir string, problems []string) ([]sluice.MessageTypeConfig, []string) {
	var out []sluice.MessageTypeConfig
	problems = append(problems, entries(n, "messageTypes", func(name string, v *yaml.Node) error {
		t, err := messageType(v, "messageTypes."+name, dir)
		t.Name = name
		out = append(out, t)
		return err
	})...)
	return out, problems
}

// messageType reads a type; schema, transform and targetSchema are files
// relative to dir.
func messageType(n *yaml.Node, where, dir string) (sluice.MessageTypeConfig, error) {
	if err := checkKeys(n, where, typeKeys); err != nil {
		return sluice.MessageTypeConfig{}, err
	}
	var ty typeYAML
	if err := n.Decode(&ty); err != nil {
		return sluice.MessageTypeConfig{}, fmt.Errorf("%s: %v", where, err)
	}
	t := sluice.MessageTypeConfig{Partners: ty.Partners, Format: ty.Format, TargetFormat: ty.TargetFormat,
		Hub: ty.Hub, PartitionKey: ty.PartitionKey, Namespaces: ty.Namespaces, MaxBytes: ty.MaxBytes}
	for _, f := range []struct {
		name, path string
		into       *string
	}{{"schema", ty.Schema, &t.Schema}, {"transform", ty.Transform, &t.Transform}, {"targetSchema", ty.TargetSchema, &t.TargetSchema}} {
		if f.path == "" {
			continue
		}
		p := f.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return t, fmt.Errorf("%s.%s: %v (a file, relative to the configuration file)", where, f.name, err)
		}
		*f.into = string(data)
	}
	return t, nil
}

// endpoint reads an endpoint; its secrets come from the environment
// variables it names.
func endpoint(n *yaml.Node, where string) (sluice.PartnerEndpoint, error) {
	if err := checkKeys(n, where, endpointKeys); err != nil {
		return sluice.PartnerEndpoint{}, err
	}
	var ey endpointYAML
	if err := n.Decode(&ey); err != nil {
		return sluice.PartnerEndpoint{}, fmt.Errorf("%s: %v", where, err)
	}
	ep := sluice.PartnerEndpoint{URL: ey.URL, Types: ey.Types, Timeout: time.Duration(ey.Timeout), RatePerSecond: ey.Rate,
		Ordered: ey.Ordered, MaxAttempts: ey.MaxAttempts}
	env := func(field, name string) (string, error) {
		if name == "" {
			return "", fmt.Errorf("%s: auth %s needs %s, the environment variable that holds the secret", where, ey.Auth, field)
		}
		v := os.Getenv(name)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s (%s) is empty or not set", where, name, field)
		}
		return v, nil
	}
	var err error
	switch ey.Auth {
	case "", "none":
	case "bearer":
		ep.BearerToken, err = env("tokenEnv", ey.TokenEnv)
	case "oauth2":
		ep.TokenURL, ep.ClientID, ep.Scopes = ey.TokenURL, ey.ClientID, ey.Scopes
		ep.ClientSecret, err = env("clientSecretEnv", ey.ClientSecretEnv)
	case "hmac":
		var s string
		s, err = env("secretsEnv", ey.SecretsEnv)
		ep.SigningSecrets = strings.Fields(s)
	default:
		err = fmt.Errorf("%s: auth %q: use bearer, oauth2, hmac or none", where, ey.Auth)
	}
	return ep, err
}

type deliveryYAML struct {
	Hub             string       `yaml:"hub"`
	ConsumerGroup   string       `yaml:"consumerGroup"`
	MaxBatchSize    int          `yaml:"maxBatchSize"`
	Concurrency     int          `yaml:"concurrency"`
	RetrySchedule   string       `yaml:"retrySchedule"`
	RetryBackoff    duration     `yaml:"retryBackoff"`
	MaxRetryBackoff duration     `yaml:"maxRetryBackoff"`
	Breaker         *breakerYAML `yaml:"breaker"`
}

var deliveryKeys = []string{"hub", "consumerGroup", "maxBatchSize", "concurrency", "retrySchedule", "retryBackoff", "maxRetryBackoff", "breaker"}

// deliveriesSection reads the delivery functions: each posts a hub's
// events to their partners' endpoints (see App.Delivery).
func deliveriesSection(n *yaml.Node, problems []string) (map[string]sluice.DeliveryConfig, []string) {
	out := map[string]sluice.DeliveryConfig{}
	problems = append(problems, entries(n, "deliveries", func(name string, v *yaml.Node) error {
		where := "deliveries." + name
		if err := checkKeys(v, where, deliveryKeys); err != nil {
			return err
		}
		if b := mappingValue(v, "breaker"); b != nil {
			if err := checkKeys(b, where+".breaker", []string{"failureThreshold", "window", "consecutiveFailures", "coolDown", "maxCoolDown"}); err != nil {
				return err
			}
		}
		var dy deliveryYAML
		if err := v.Decode(&dy); err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		if dy.Hub == "" {
			return fmt.Errorf("%s: line %d: give the hub whose events it delivers (hub)", where, v.Line)
		}
		dc := sluice.DeliveryConfig{Hub: dy.Hub, ConsumerGroup: dy.ConsumerGroup, MaxBatchSize: dy.MaxBatchSize,
			Concurrency: dy.Concurrency, RetrySchedule: dy.RetrySchedule, RetryBackoff: time.Duration(dy.RetryBackoff),
			MaxRetryBackoff: time.Duration(dy.MaxRetryBackoff)}
		if b := dy.Breaker; b != nil {
			dc.Breaker = sluice.BreakerPolicy{FailureThreshold: b.FailureThreshold, Window: time.Duration(b.Window),
				ConsecutiveFailures: b.ConsecutiveFailures, CoolDown: time.Duration(b.CoolDown), MaxCoolDown: time.Duration(b.MaxCoolDown)}
		}
		out[name] = dc
		return nil
	})...)
	return out, problems
}

// mappingValue is the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
