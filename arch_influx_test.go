package proactive_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// influxSpeakers are the packages allowed to speak to InfluxDB: influx, the
// adapter, and internal/testenv, which starts a throwaway influxd for tests
// and writes fixtures into it.
var influxSpeakers = []string{module + "/influx", module + "/internal/testenv"}

// influxClients are the module paths of the InfluxDB client libraries.
var influxClients = []string{"github.com/influxdata/influxdb-client-go", "github.com/influxdata/line-protocol"}

// influxWire matches what speaking to InfluxDB by hand looks like in Go
// source: its write endpoint, and Flux (a query from a bucket, or a pipe).
var influxWire = regexp.MustCompile(`/api/v2/write|from\(\s*bucket\s*:|\|>`)

// fluxQuery matches Flux in Go source.
var fluxQuery = regexp.MustCompile(`from\(\s*bucket\s*:|\|>`)

// InfluxDB is spoken to only from the influx package: no other package of
// the module imports an InfluxDB client or line-protocol library, in its
// code or its tests, and none writes Flux or calls the write endpoint in its
// code. Test files may hold Flux as data: cmd/proactive/compose_test.go
// checks the Grafana dashboards' queries. ingest and rules do not even
// depend on influx; cmd/proactive hands them an *influx.Store through the
// interfaces they declare. Not even the speakers write Flux: InfluxDB 3 has
// none, so every read is InfluxQL.
func TestInfluxOnlyInInflux(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	seen := map[string]bool{}
	for {
		var p struct {
			ImportPath, Dir                    string
			GoFiles                            []string
			Imports, TestImports, XTestImports []string
			Deps                               []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.ImportPath != module && !strings.HasPrefix(p.ImportPath, module+"/") {
			continue
		}
		seen[p.ImportPath] = true
		if slices.Contains(influxSpeakers, p.ImportPath) {
			for _, f := range p.GoFiles {
				src, err := os.ReadFile(filepath.Join(p.Dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if loc := fluxQuery.FindIndex(src); loc != nil {
					t.Errorf("%s: %q: reads are InfluxQL, which InfluxDB 1.8, 2.x and 3.x all serve; 3.x has no Flux",
						filepath.Join(p.Dir, f), src[loc[0]:loc[1]])
				}
			}
			continue
		}
		for _, imports := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, d := range imports {
				if isInfluxClient(d) {
					t.Errorf("%s imports %s: only %s may speak to InfluxDB", p.ImportPath, d, strings.Join(influxSpeakers, " and "))
				}
			}
		}
		if p.ImportPath == module+"/ingest" || p.ImportPath == module+"/rules" {
			for _, d := range p.Deps {
				if d == module+"/influx" || isInfluxClient(d) {
					t.Errorf("%s depends on %s: it declares the interface it needs and cmd/proactive wires influx in", p.ImportPath, d)
				}
			}
		}
		for _, f := range p.GoFiles {
			src, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if loc := influxWire.FindIndex(src); loc != nil {
				t.Errorf("%s: %q: Flux and InfluxDB's write API belong in the influx package",
					filepath.Join(p.Dir, f), src[loc[0]:loc[1]])
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{module + "/influx", module + "/ingest", module + "/rules"} {
		if !seen[p] {
			t.Errorf("go list did not list %s", p)
		}
	}
}

func isInfluxClient(path string) bool {
	for _, c := range influxClients {
		if path == c || strings.HasPrefix(path, c+"/") {
			return true
		}
	}
	return false
}
