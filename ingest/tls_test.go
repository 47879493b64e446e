package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/ingest"
)

func TestTLSConfig(t *testing.T) {
	if c, err := ingest.TLSConfig("mqtt://broker:1883", ""); c != nil || err != nil {
		t.Errorf("plain TCP: %v, %v", c, err)
	}
	if c, err := ingest.TLSConfig("mqtts://broker.example:8883", ""); err != nil || c == nil || c.ServerName != "broker.example" {
		t.Errorf("mqtts: %+v, %v", c, err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.TLSConfig("ssl://broker:8883", notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("CA file without certificates: %v", err)
	}
}
