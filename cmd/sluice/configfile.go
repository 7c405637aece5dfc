package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice"
)

// The configuration file, sluice.yaml: every flag of sluice dev and serve
// by its name, and settings per function. A flag given on the command line
// wins over its environment variable, which wins over the file.
//
//	http: 127.0.0.1:7070
//	sync: interval
//	breaker-webhook: https://ops.example.com/hooks/sluice
//	functions:
//	  deliver:
//	    timeout: 10s
//	    breaker:
//	      failureThreshold: 101
//	      window: 30s
//	      consecutiveFailures: 5
//	      coolDown: 30s
//	      maxCoolDown: 5m

// defaultConfigFile is read when --config is not given and it exists.
const defaultConfigFile = "sluice.yaml"

type functionYAML struct {
	Timeout duration     `yaml:"timeout"`
	Breaker *breakerYAML `yaml:"breaker"`
}

type breakerYAML struct {
	FailureThreshold    int      `yaml:"failureThreshold"`
	Window              duration `yaml:"window"`
	ConsecutiveFailures int      `yaml:"consecutiveFailures"`
	CoolDown            duration `yaml:"coolDown"`
	MaxCoolDown         duration `yaml:"maxCoolDown"`
}

// duration is a Go duration in YAML ("30s", "5m").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (write it like 30s, 5m or 1h30m)", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// loadConfigFile reads the configuration file named by --config (or
// sluice.yaml when it exists), sets the flags it names that neither the
// command line nor the environment set, and returns its function settings.
func loadConfigFile(fset *flag.FlagSet, path string, explicit bool) (fileConfig, error) {
	var fc fileConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return fc, nil
	}
	if err != nil {
		return fc, fmt.Errorf("configuration file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fc, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return fc, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fc, fmt.Errorf("%s: line %d: the file must be a mapping of settings (name: value)", path, root.Line)
	}
	var problems []string
	fc.SecretEnv = secretEnvNames(root, nil)
	rest := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "partners":
			fc.Partners, problems = partnersSection(v, filepath.Dir(path), problems)
		case "messageTypes":
			fc.MessageTypes, problems = messageTypesSection(v, filepath.Dir(path), problems)
		case "deliveries":
			fc.Deliveries, problems = deliveriesSection(v, problems)
		case "pipelines":
			fc.Pipelines, problems = pipelinesSection(v, problems)
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	fc.Functions, err = flagSettings(fset, path, rest, problems)
	return fc, err
}

// fileConfig is what the configuration file declares beside flags.
type fileConfig struct {
	Functions    map[string]sluice.FunctionSettings
	Partners     []sluice.PartnerConfig
	MessageTypes []sluice.MessageTypeConfig
	Deliveries   map[string]sluice.DeliveryConfig
	Pipelines    map[string]sluice.PipelineConfig
	// SecretEnv are the environment variables the file names for secrets
	// (every setting whose name ends in "Env": urlEnv, tokenEnv,
	// clientSecretEnv, secretsEnv).
	SecretEnv []string
}

// secretEnvNames collects the values of settings named *Env below n.
func secretEnvNames(n *yaml.Node, out []string) []string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if strings.HasSuffix(k.Value, "Env") && v.Kind == yaml.ScalarNode && v.Value != "" && !slices.Contains(out, v.Value) {
				out = append(out, v.Value)
			}
			// headersEnv: header → variable.
			if strings.HasSuffix(k.Value, "Env") && v.Kind == yaml.MappingNode {
				for j := 1; j < len(v.Content); j += 2 {
					if e := v.Content[j]; e.Kind == yaml.ScalarNode && e.Value != "" && !slices.Contains(out, e.Value) {
						out = append(out, e.Value)
					}
				}
			}
		}
	}
	for _, c := range n.Content {
		out = secretEnvNames(c, out)
	}
	return out
}

// flagSettings sets the flags root names and decodes its functions
// section; problems found before are reported with its own.
func flagSettings(fset *flag.FlagSet, path string, root *yaml.Node, problems []string) (map[string]sluice.FunctionSettings, error) {
	set := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var fns map[string]sluice.FunctionSettings
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "functions" {
			var err error
			if fns, err = functionSettings(v); err != nil {
				problems = append(problems, err.Error())
			}
			continue
		}
		f := fset.Lookup(k.Value)
		if f == nil || k.Value == "config" || k.Value == "help" {
			problems = append(problems, fmt.Sprintf("line %d: unknown setting %q (settings are the flags of this command, by name, functions, partners, messageTypes, deliveries and pipelines)", k.Line, k.Value))
			continue
		}
		if v.Kind != yaml.ScalarNode {
			problems = append(problems, fmt.Sprintf("line %d: %s takes one value, as its flag does", v.Line, k.Value))
			continue
		}
		if set[k.Value] || os.Getenv(envName(k.Value)) != "" {
			continue // the command line or the environment wins
		}
		if err := fset.Set(k.Value, v.Value); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %s: %q is not a valid value (%v; the flag is: %s)", v.Line, k.Value, v.Value, err, f.Usage))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return fns, nil
}

// envName is the environment variable of a flag: --data-dir is
// SLUICE_DATA_DIR.
func envName(flagName string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// functionSettings decodes the functions section.
func functionSettings(n *yaml.Node) (map[string]sluice.FunctionSettings, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: functions is a mapping of function names to their settings (timeout, breaker)", n.Line)
	}
	out := map[string]sluice.FunctionSettings{}
	var problems []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := n.Content[i].Value, n.Content[i+1]
		var fy functionYAML
		if err := decodeStrict(v, &fy); err != nil {
			problems = append(problems, fmt.Sprintf("functions.%s: %v", name, err))
			continue
		}
		s := sluice.FunctionSettings{Timeout: time.Duration(fy.Timeout)}
		if b := fy.Breaker; b != nil {
			s.Breaker = &sluice.BreakerPolicy{FailureThreshold: b.FailureThreshold, Window: time.Duration(b.Window),
				ConsecutiveFailures: b.ConsecutiveFailures, CoolDown: time.Duration(b.CoolDown), MaxCoolDown: time.Duration(b.MaxCoolDown)}
		}
		out[name] = s
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, errors.New(strings.Join(problems, "\n  "))
	}
	return out, nil
}

// decodeStrict decodes n into v, refusing keys (at any depth of
// mappings) that v's fields do not name; errors give the file's lines.
func decodeStrict(n *yaml.Node, v any) error {
	if err := knownKeys(n, map[string]map[string]bool{
		"":        {"timeout": true, "breaker": true},
		"breaker": {"failureThreshold": true, "window": true, "consecutiveFailures": true, "coolDown": true, "maxCoolDown": true},
	}, ""); err != nil {
		return err
	}
	return n.Decode(v)
}

// knownKeys checks the keys of mapping n (named section) against known.
func knownKeys(n *yaml.Node, known map[string]map[string]bool, section string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping of settings", n.Line)
	}
	allowed := known[section]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !allowed[k.Value] {
			names := make([]string, 0, len(allowed))
			for name := range allowed {
				names = append(names, name)
			}
			slices.Sort(names)
			return fmt.Errorf("line %d: unknown setting %q (use %s)", k.Line, k.Value, strings.Join(names, ", "))
		}
		if _, ok := known[k.Value]; ok {
			if err := knownKeys(n.Content[i+1], known, k.Value); err != nil {
				return err
			}
		}
	}
	return nil
}
