package simulator

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed scenarios/*.yaml
var builtin embed.FS

// Builtin returns the scenario shipped under name ("demo", "compressor_wear",
// ...), as in simulator/scenarios/NAME.yaml.
func Builtin(name string) (*Scenario, error) {
	file := "scenarios/" + name + ".yaml"
	b, err := builtin.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (there are %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return ParseScenario("simulator/"+file, b)
}

// BuiltinNames lists the shipped scenarios.
func BuiltinNames() []string {
	var names []string
	entries, _ := fs.ReadDir(builtin, "scenarios")
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	sort.Strings(names)
	return names
}
