// Package testenv gives integration tests the real services they run against: a
// throwaway influxd per test, the local Mosquitto broker, and free ports.
//
// A test that needs a service that is absent fails with a clear message when CI=true
// and skips with that message otherwise (see RequireService), so `go test ./...` works
// on a bare laptop while CI cannot silently skip what it is meant to exercise.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// RequireService reports that the service name, which the calling test needs, is not
// available, with msg saying what is missing and how to get it. Under CI=true it fails
// the test (tb.Fatalf); otherwise it skips it (tb.Skipf). Either way the calling test
// goroutine stops, as with any Fatal or Skip.
func RequireService(tb testing.TB, name, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true: a missing %s is a failure)", msg, name)
		return
	}
	tb.Skipf("%s (skipped; under CI=true this fails)", msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process can take it before the caller binds it; listen on 127.0.0.1:0 instead
// where the code under test allows.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:N" for a port N from FreePort.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
}

// defaultMosquitto is where Debian's mosquitto package listens out of the box.
const defaultMosquitto = "127.0.0.1:1883"

// Mosquitto returns the URL of an external MQTT broker for tests that check the
// ingester against something other than the embedded broker: "tcp://127.0.0.1:1883",
// or $PROACTIVE_TEST_MOSQUITTO (a URL such as tcp://host:1883 or mqtt://host:1883, or a
// bare host:port, which gets tcp://). It checks only that a TCP connection succeeds
// within 1 s; if not, it calls RequireService.
func Mosquitto(tb testing.TB) string {
	tb.Helper()
	brokerURL, addr := "tcp://"+defaultMosquitto, defaultMosquitto
	if v := os.Getenv("PROACTIVE_TEST_MOSQUITTO"); v != "" {
		var err error
		if brokerURL, addr, err = parseBroker(v); err != nil {
			tb.Fatalf("PROACTIVE_TEST_MOSQUITTO=%q: %v", v, err)
		}
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		RequireService(tb, "mosquitto", fmt.Sprintf(
			"no MQTT broker at %s (%v): install and start mosquitto (apt-get install mosquitto) or set PROACTIVE_TEST_MOSQUITTO",
			addr, err))
		return ""
	}
	conn.Close()
	return brokerURL
}

// parseBroker turns an MQTT broker URL or host:port into the URL to hand to the
// client and the address to dial.
func parseBroker(v string) (brokerURL, addr string, err error) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		// Not a URL with a host: take it as host:port.
		if _, _, err := net.SplitHostPort(v); err != nil {
			return "", "", fmt.Errorf("want a URL like tcp://host:1883 or host:port: %w", err)
		}
		return "tcp://" + v, v, nil
	}
	port := u.Port()
	if port == "" {
		port = "1883"
		if u.Scheme == "mqtts" || u.Scheme == "ssl" || u.Scheme == "tls" {
			port = "8883"
		}
	}
	return v, net.JoinHostPort(u.Hostname(), port), nil
}

// repoRoot returns the directory holding go.mod, found by walking up from the working
// directory, which `go test` sets to the package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
