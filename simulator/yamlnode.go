package simulator

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LineError is one problem of a scenario file, at a line of it.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error returns "FILE:LINE: message".
func (e *LineError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// walker reads a yaml.Node tree strictly: unknown keys, duplicate keys and
// values of the wrong kind are errors with their line. It collects every
// problem instead of stopping at the first.
type walker struct {
	file string
	errs []*LineError
}

func (w *walker) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.errs = append(w.errs, &LineError{File: w.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns every problem, in line order, or nil.
func (w *walker) err() error {
	if len(w.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(w.errs, func(a, b *LineError) int { return a.Line - b.Line })
	errs := make([]error, len(w.errs))
	for i, e := range w.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// field is one key a mapping may have.
type field struct {
	key string
	fn  func(v *yaml.Node)
}

// mapping calls each field's fn with the value of its key, in the order of
// the file, and reports keys that are not fields (with the known ones) and
// keys given twice. where names the mapping in messages.
func (w *walker) mapping(n *yaml.Node, where string, fields ...field) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		w.errf(n, "%s: want a mapping (key: value), got %s", where, kind(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			w.errf(k, "%s: %q given twice", where, k.Value)
			continue
		}
		seen[k.Value] = true
		j := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if j < 0 {
			known := make([]string, len(fields))
			for i, f := range fields {
				known[i] = f.key
			}
			w.errf(k, "%s: unknown key %q (known: %s)", where, k.Value, strings.Join(known, ", "))
			continue
		}
		fields[j].fn(v)
	}
}

// entries calls fn for every key and value of a mapping whose keys are
// names (metrics, for example), in file order.
func (w *walker) entries(n *yaml.Node, where string, fn func(k, v *yaml.Node)) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		w.errf(n, "%s: want a mapping (name: value), got %s", where, kind(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			w.errf(k, "%s: %q given twice", where, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
}

// list calls fn for every item of a sequence.
func (w *walker) list(n *yaml.Node, where string, fn func(i int, v *yaml.Node)) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		w.errf(n, "%s: want a list, got %s", where, kind(n))
		return
	}
	for i, v := range n.Content {
		fn(i, v)
	}
}

func (w *walker) scalar(n *yaml.Node, where string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		w.errf(n, "%s: want a single value, got %s", where, kind(n))
		return "", false
	}
	return n.Value, true
}

func (w *walker) str(n *yaml.Node, where string, dst *string) {
	if s, ok := w.scalar(n, where); ok {
		*dst = s
	}
}

func (w *walker) strs(n *yaml.Node, where string, dst *[]string) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		*dst = []string{n.Value}
		return
	}
	w.list(n, where, func(_ int, v *yaml.Node) {
		if s, ok := w.scalar(v, where); ok {
			*dst = append(*dst, s)
		}
	})
}

func (w *walker) float(n *yaml.Node, where string, dst *float64) {
	s, ok := w.scalar(n, where)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		w.errf(n, "%s: %q is not a number", where, s)
		return
	}
	*dst = f
}

func (w *walker) optFloat(n *yaml.Node, where string, dst **float64) {
	var f float64
	before := len(w.errs)
	w.float(n, where, &f)
	if len(w.errs) == before {
		*dst = &f
	}
}

func (w *walker) int(n *yaml.Node, where string, dst *int) {
	s, ok := w.scalar(n, where)
	if !ok {
		return
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		w.errf(n, "%s: %q is not a whole number", where, s)
		return
	}
	*dst = i
}

func (w *walker) uint64(n *yaml.Node, where string, dst *uint64) {
	s, ok := w.scalar(n, where)
	if !ok {
		return
	}
	i, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		w.errf(n, "%s: %q is not a whole number >= 0", where, s)
		return
	}
	*dst = i
}

func (w *walker) duration(n *yaml.Node, where string, dst *time.Duration) {
	s, ok := w.scalar(n, where)
	if !ok {
		return
	}
	d, err := parseDuration(s)
	if err != nil {
		w.errf(n, "%s: %v", where, err)
		return
	}
	*dst = d
}

// deref follows YAML aliases (*name) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func (w *walker) bool(n *yaml.Node, where string, dst *bool) {
	s, ok := w.scalar(n, where)
	if !ok {
		return
	}
	switch s {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		w.errf(n, "%s: %q is not true or false", where, s)
	}
}
