package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeFile applies the YAML document b (read from name) to cfg, key by
// key, so that one bad value or unknown key does not hide the others: every
// problem comes back, each naming its key and line.
func decodeFile(cfg *Config, name string, b []byte) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		// A syntax error leaves no tree to walk.
		return []error{fmt.Errorf("%s: %w", name, err)}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file: the defaults
	}
	d := fileDecoder{name: name, keys: fileKeys(), merging: map[*yaml.Node]bool{}}
	d.section(reflect.ValueOf(cfg).Elem(), doc.Content[0], "")
	return d.errs
}

type fileDecoder struct {
	name string
	keys []candidate
	errs []error
	// merging holds the mappings being merged, against a merge of a
	// mapping into itself.
	merging map[*yaml.Node]bool
}

func (d *fileDecoder) fail(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf("%s line %d: %s", d.name, n.Line, fmt.Sprintf(format, args...)))
}

// section decodes the mapping n into the struct v, whose keys sit under
// prefix.
func (d *fileDecoder) section(v reflect.Value, n *yaml.Node, prefix string) {
	n = unalias(n)
	if isNull(n) {
		return // "notify:" with nothing under it
	}
	what := prefix
	if what == "" {
		what = "the configuration"
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s must be a mapping of keys, not %s", what, kindName(n))
		return
	}
	fields := map[string]int{}
	for i := range v.NumField() {
		fields[yamlName(v.Type().Field(i))] = i
	}
	// Merged mappings (<<: *anchor) first, so that the keys written here
	// override them, as YAML has it.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, val := n.Content[i], unalias(n.Content[i+1]); k.Tag == "!!merge" {
			if d.merging[val] {
				d.fail(k, "%s merges a mapping into itself", what)
				continue
			}
			d.merging[val] = true
			if val.Kind == yaml.SequenceNode {
				for _, m := range val.Content {
					d.section(v, m, prefix)
				}
			} else {
				d.section(v, val, prefix)
			}
			delete(d.merging, val)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		key := joinKey(prefix, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(k, "%s is given twice (first on line %d)", key, line)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			d.fail(k, "unknown key %s (did you mean %s?)", key, nearest(key, '.', []string{lastPart(key, '.')}, d.keys))
			continue
		}
		fv := v.Field(fi)
		if fv.Kind() == reflect.Struct {
			d.section(fv, val, key)
			continue
		}
		if err := leaf(fv, unalias(val)); err != nil {
			d.errs = append(d.errs, fmt.Errorf("%s (%s line %d): %w", key, d.name, val.Line, err))
		}
	}
}

// leaf sets one value from its node, with the grammar of the environment
// variables (setFromString), so that the file and the environment accept
// the same values and say the same things about bad ones.
func leaf(v reflect.Value, n *yaml.Node) error {
	if _, list := v.Interface().([]string); list && n.Kind == yaml.SequenceNode {
		parts := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			item = unalias(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				return fmt.Errorf("line %d: a list item must be a single value, not %s", item.Line, kindName(item))
			}
			parts = append(parts, item.Value)
		}
		v.Set(reflect.ValueOf(parts))
		return nil
	}
	if _, dict := v.Interface().(map[string]string); dict && n.Kind == yaml.MappingNode {
		m := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := unalias(n.Content[i]), unalias(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode || isNull(val) {
				return fmt.Errorf("line %d: each entry must be name: value", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return fmt.Errorf("line %d: %s is given twice", k.Line, k.Value)
			}
			m[k.Value] = val.Value
		}
		if len(m) == 0 {
			v.SetZero() // as the default: none
			return nil
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a single value, not %s", kindName(n))
	}
	if isNull(n) {
		if v.Kind() == reflect.String || v.Kind() == reflect.Slice || v.Kind() == reflect.Map {
			v.SetZero()
			return nil
		}
		return fmt.Errorf("has no value")
	}
	return setFromString(v, n.Value)
}

func unalias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "nothing"
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// fileKeys returns every key of the file, sections ("influx") and leaves
// ("influx.token"): what an unknown key is compared with.
func fileKeys() []candidate {
	var keys []candidate
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			key := joinKey(prefix, yamlName(t.Field(i)))
			keys = append(keys, candidate{key, lastPart(key, '.'), key})
			if t.Field(i).Type.Kind() == reflect.Struct {
				walk(t.Field(i).Type, key)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}
