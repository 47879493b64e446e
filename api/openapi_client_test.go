package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/internal/testenv"
)

// Every operation has an operationId, unique, so that generated clients
// get stable method names; the webhook payloads are schemas, their event
// types the domain's.
func TestOpenAPIOperationIDs(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]struct{ OperationID string } `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := seen[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %s", key, other, op.OperationID)
			}
			seen[op.OperationID] = key
		}
	}
	for _, s := range []string{"OutboundEvent", "Webhook", "WebhookRequest", "Delivery", "CustomerEvent", "SlackMessage"} {
		if _, ok := doc.Components.Schemas[s]; !ok {
			t.Errorf("no schema %s", s)
		}
	}
	enum := doc.Components.Schemas["EventType"].Enum
	if len(enum) != len(proactive.EventTypes) {
		t.Fatalf("EventType enum %v, want %v", enum, proactive.EventTypes)
	}
	for i, e := range proactive.EventTypes {
		if enum[i] != string(e) {
			t.Errorf("EventType enum[%d] = %s, want %s", i, enum[i], e)
		}
	}
}

// A client generated from openapi.json by oapi-codegen (the module's tool)
// compiles: the document is usable by the generators integrators run.
func TestOpenAPIClientCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and builds a client: not in -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.RequireService(t, "go", "no go command on PATH to run oapi-codegen with")
	}
	dir := t.TempDir()
	gen := exec.CommandContext(t.Context(), gobin, "tool", "oapi-codegen", "-generate", "types,client", "-package", "client",
		"-o", filepath.Join(dir, "client.go"), "openapi.json")
	if out, err := gen.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "no such tool") || strings.Contains(string(out), "cannot find module") ||
			strings.Contains(string(out), "dial tcp") {
			testenv.RequireService(t, "oapi-codegen", "cannot build oapi-codegen (go tool oapi-codegen): "+strings.TrimSpace(string(out)))
		}
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}
	// A module of its own beside nothing: the runtime's version and sums
	// come from this module's, and nothing is fetched.
	version, err := exec.CommandContext(t.Context(), gobin, "list", "-m", "-f", "{{.Version}}", "github.com/oapi-codegen/runtime").Output()
	if err != nil {
		t.Fatalf("go list runtime: %v", err)
	}
	mod := "module example.com/proactiveclient\n\ngo 1.24\n\nrequire github.com/oapi-codegen/runtime " + strings.TrimSpace(string(version)) + "\n"
	sums, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sums} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vet := exec.CommandContext(t.Context(), gobin, "vet", ".")
	vet.Dir = dir
	vet.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := vet.CombinedOutput(); err != nil {
		t.Fatalf("the generated client does not compile: %v\n%s", err, out)
	}
}
