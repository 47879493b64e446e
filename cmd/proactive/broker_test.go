package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/proactivehq/proactive/internal/testenv"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1 in dir and
// returns the paths of the CA, the server certificate and its key.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proactive test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// The ingester reaches an external broker over TLS with a username and
// password (mqtts://), and the password never reaches the logs.
func TestExternalBrokerTLSWithPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	const password = "s3cret-broker-pass"
	passwd := testenv.MosquittoPasswordFile(t, "ingest", password)
	brokerLog := filepath.Join(dir, "mosquitto.log") // shows when it refuses the wrong password
	port := testenv.PrivateMosquitto(t, strings.Join([]string{
		"listener {{port}} 127.0.0.1",
		"cafile " + ca, "certfile " + cert, "keyfile " + key,
		"allow_anonymous false", "password_file " + passwd,
		"persistence false", "log_dest file " + brokerLog,
	}, "\n"))

	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_URL"] = "mqtts://127.0.0.1:" + strconv.Itoa(port)
	env["PROACTIVE_MQTT_TLS_CA_FILE"] = ca
	env["PROACTIVE_MQTT_USERNAME"] = "ingest"
	env["PROACTIVE_MQTT_PASSWORD"] = password
	env["PROACTIVE_LOG_LEVEL"] = "debug"
	p := startServe(t, env)
	p.waitReady(t)

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker("tls://127.0.0.1:" + strconv.Itoa(port)).
		SetClientID("tls-device").SetUsername("ingest").SetPassword(password).
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer pub.Disconnect(50)
	publish(t, pub, "devices/heatpump-9/telemetry", `{"ts": 1763791200000, "metrics": {"cop": 3.4}}`)
	waitCount(t, influx, 1, 10*time.Second, p.logs)
	checkStored(t, influx, want{pointKey("heatpump-9", time.UnixMilli(1763791200000)): {"cop": 3.4}})

	if err := p.stop(t); err != nil {
		t.Errorf("serve: %v", err)
	}
	if strings.Contains(p.logs.String(), password) {
		t.Errorf("the broker password appears in the logs")
	}

	// A wrong password keeps the service unready instead of crashing it.
	env["PROACTIVE_MQTT_PASSWORD"] = "wrong"
	env["PROACTIVE_HTTP_ADDR"] = testenv.FreeAddr(t)
	p2 := startServe(t, env)
	testenv.Eventually(t, 0, func() error {
		if b, _ := os.ReadFile(brokerLog); !bytes.Contains(b, []byte("not authorised")) {
			return fmt.Errorf("the broker has not refused the wrong password; its log:\n%s", b)
		}
		return nil
	})
	if code, body := get(p2.http, "/readyz"); code != 503 || !strings.Contains(body, "mqtt") {
		t.Errorf("/readyz with a wrong broker password = %d %s, want 503 naming mqtt", code, body)
	}
}

// startPlainBroker runs a plain MQTT broker on addr, standing for an external one
// that can be restarted.
func startPlainBroker(t *testing.T, addr string) *mqtt.Server {
	t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	// The previous broker's port may take a moment to free.
	ln := testenv.EventuallyValue(t, 0, func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err := s.AddListener(listeners.NewNet("ext", ln)); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	return s
}

// An external broker that restarts without persistence forgets the
// ingester's subscriptions; the ingester subscribes again on reconnect.
func TestExternalBrokerRestartResubscribes(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	broker := startPlainBroker(t, addr)

	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_URL"] = "mqtt://" + addr
	p := startServe(t, env)
	p.waitReady(t)

	send := func(ts int64) {
		t.Helper()
		if err := broker.Publish("devices/charger-3/telemetry", []byte(`{"ts": `+strconv.FormatInt(ts, 10)+`, "metrics": {"kw": 7.2}}`), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	send(1763791200000)
	waitCount(t, influx, 1, 10*time.Second, p.logs)

	_ = broker.Close()
	testenv.Eventually(t, 0, func() error {
		if code, body := get(p.http, "/readyz"); code != 503 {
			return fmt.Errorf("/readyz = %d %s while the broker was down, want 503", code, body)
		}
		return nil
	})
	broker = startPlainBroker(t, addr)
	defer broker.Close()
	p.waitReady(t)
	send(1763791260000)
	waitCount(t, influx, 2, 10*time.Second, p.logs)
}
