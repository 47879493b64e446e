package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
)

// OtherVariables are the PROACTIVE_* variables that are not configuration
// keys, with what reads them. Any other PROACTIVE_* variable in the
// environment is a mistake that Load reports.
var OtherVariables = map[string]string{
	"PROACTIVE_CONFIG":            "every command: the configuration file (--config)",
	"PROACTIVE_API_TOKEN":         "simulate score --api: the API token",
	"PROACTIVE_SIMULATE_USERNAME": "simulate: the MQTT username",
	"PROACTIVE_SIMULATE_PASSWORD": "simulate: the MQTT password",
	// The test harness (internal/testenv), which also owns PROACTIVE_TEST_*.
	"PROACTIVE_INFLUXD":   "tests: the influxd binary",
	"PROACTIVE_MOSQUITTO": "tests: the mosquitto binary",
}

// testPrefix is the test harness's own namespace.
const testPrefix = "PROACTIVE_TEST_"

// fileSuffix names the variable that holds a secret's file (Docker secrets).
const fileSuffix = "_FILE"

// applyEnv sets every key whose variable is set. getenv reads values;
// environ (os.Environ's "NAME=value" form), when given, tells a variable
// that is set but empty from one that is not set, and lists the variables
// to check for unknown PROACTIVE_* names.
func applyEnv(cfg *Config, getenv func(string) string, environ []string) []error {
	present := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		present[name] = true
	}
	var errs []error
	walkLeaves(reflect.ValueOf(cfg).Elem(), "", func(key, env string, v reflect.Value) {
		s := getenv(env)
		if isSecretLeaf(v) {
			if path := getenv(env + fileSuffix); path != "" {
				if s != "" {
					errs = append(errs, fmt.Errorf("%s: both %s and %s are set: keep one", key, env, env+fileSuffix))
					return
				}
				b, err := os.ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s (%s): %w", key, env+fileSuffix, err))
					return
				}
				// Editors and `echo` end the file with a newline that is
				// not part of the secret.
				v.SetString(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
				return
			}
		}
		if s == "" {
			if !present[env] {
				return
			}
			// Set but empty: empty where empty means something (off, none).
			if v.Kind() != reflect.String && v.Kind() != reflect.Slice {
				errs = append(errs, fmt.Errorf("%s (%s): set but empty: give a value or unset it", key, env))
				return
			}
			v.SetZero()
			return
		}
		if err := setFromString(v, s); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", key, env, err))
		}
	})
	errs = append(errs, unknownVariables(environ)...)
	return errs
}

// unknownVariables reports every PROACTIVE_* name in environ that nothing
// reads, with the known one nearest to it.
func unknownVariables(environ []string) []error {
	known := knownVariables()
	isKnown := map[string]bool{}
	for _, c := range known {
		isKnown[c.name] = isKnown[c.name] || c.name == c.suggest
	}
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PROACTIVE_") && !strings.HasPrefix(name, testPrefix) && !isKnown[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		near, hint := nearestVariable(name, known), ""
		if base, ok := strings.CutSuffix(name, fileSuffix); ok && isKnown[base] {
			near, hint = base, "; only secrets ("+strings.Join(secretVariables(), ", ")+") may come from a file"
		}
		errs = append(errs, fmt.Errorf("unknown variable %s (did you mean %s?%s)", name, near, hint))
	}
	return errs
}

// nearestVariable is the known variable nearest to name; the part after
// PROACTIVE_ is compared with each key's last segment too, for a variable
// that leaves out the section (PROACTIVE_TOKEN).
func nearestVariable(name string, known []candidate) string {
	return nearest(name, '_', []string{strings.TrimPrefix(name, "PROACTIVE_")}, known)
}

// knownVariables lists every variable Load and the commands read, as
// candidates for "did you mean".
func knownVariables() []candidate {
	var cands []candidate
	cfg := Default()
	walkLeaves(reflect.ValueOf(&cfg).Elem(), "", func(key, env string, v reflect.Value) {
		last := strings.ToUpper(lastPart(key, '.'))
		cands = append(cands, candidate{env, last, env})
		if derived := "PROACTIVE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")); derived != env {
			// The name the key would have without its env tag.
			cands = append(cands, candidate{derived, last, env})
		}
		if isSecretLeaf(v) {
			cands = append(cands, candidate{env + fileSuffix, last + fileSuffix, env + fileSuffix})
		}
	})
	others := make([]string, 0, len(OtherVariables))
	for name := range OtherVariables {
		others = append(others, name)
	}
	sort.Strings(others)
	for _, name := range others {
		cands = append(cands, candidate{name, strings.TrimPrefix(name, "PROACTIVE_"), name})
	}
	return cands
}

// secretVariables names the variables of the secrets.
func secretVariables() []string {
	var names []string
	cfg := Default()
	walkLeaves(reflect.ValueOf(&cfg).Elem(), "", func(_, env string, v reflect.Value) {
		if isSecretLeaf(v) {
			names = append(names, env)
		}
	})
	return names
}

// isSecretLeaf reports whether a leaf walkLeaves gives is a secret (it may
// also come from a *_FILE variable and is never printed).
func isSecretLeaf(v reflect.Value) bool {
	_, ok := v.Interface().(secret)
	return ok
}
