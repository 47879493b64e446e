package proactive_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxCmdLines is the most non-test lines cmd/proactive may have: it reads
// flags and configuration and wires the packages together, and whatever
// else it grows belongs to one of them.
const maxCmdLines = 1800

// cmd/proactive stays wiring: its non-test Go files hold at most
// maxCmdLines lines.
func TestCmdIsWiring(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("cmd", "proactive", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(b, []byte("\n"))
	}
	if total == 0 {
		t.Fatal("no Go files in cmd/proactive")
	}
	if total > maxCmdLines {
		t.Errorf("cmd/proactive has %d non-test lines, more than %d: move what is not wiring to the package it belongs to", total, maxCmdLines)
	}
	t.Logf("cmd/proactive: %d non-test lines of %d", total, maxCmdLines)
}
