package simulator_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/simulator"
)

func TestReadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, csv, want, err string
	}{
		{"header and comments", "device_id,secret\n# the fridges\nfridge-001,abc\nfridge-002, xyz \n", "fridge-001=abc fridge-002=xyz", ""},
		{"no header", "fridge-001,\"a,b\"\n", "fridge-001=a,b", ""},
		{"bad lines", "device,secret\nfridge 1,Pw1\nfridge-002\nfridge-003,\nfridge-004,Pw2\nfridge-004,Pw3\n", "",
			`c.csv:2: "fridge 1" is not a device id|c.csv:3: 1 fields, want device_id,secret|c.csv:4: device fridge-003 has an empty secret|c.csv:6: device fridge-004 is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := simulator.ReadCredentials(strings.NewReader(tc.csv), "c.csv")
			if tc.err != "" {
				for _, want := range strings.Split(tc.err, "|") {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("error %v, want %q", err, want)
					}
				}
				if err != nil && strings.Contains(err.Error(), "Pw") {
					t.Errorf("a secret in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var pairs []string
			for _, id := range []string{"fridge-001", "fridge-002"} {
				if s, ok := got[id]; ok {
					pairs = append(pairs, id+"="+s)
				}
			}
			if strings.Join(pairs, " ") != tc.want || len(got) != len(pairs) {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}

// Devices with credentials connect to a Mosquitto that requires passwords,
// each as itself (username = client id = device id, password = its secret):
// an ACL lets a user write only its own device's topics, and everything
// arrives. A wrong secret fails the run, naming the device, not the secret.
func TestSimulatorCredentials(t *testing.T) {
	t.Parallel()
	passwd := testenv.MosquittoPasswordFile(t, "admin", "admin-pass")
	creds := map[string]string{}
	for i := 1; i <= 3; i++ {
		id := "fridge-00" + strconv.Itoa(i)
		creds[id] = "secret-" + id
		if out, err := exec.Command("mosquitto_passwd", "-b", passwd, id, creds[id]).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl := filepath.Join(t.TempDir(), "acl")
	// %u is the username: a device writes only its own topics.
	if err := os.WriteFile(acl, []byte("user admin\ntopic read #\n\npattern write devices/%u/+\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.PrivateMosquitto(t, strings.Join([]string{
		"listener {{port}} 127.0.0.1", "allow_anonymous false", "password_file " + passwd, "acl_file " + acl, "persistence false",
	}, "\n"))
	url := "mqtt://127.0.0.1:" + strconv.Itoa(port)

	var mu sync.Mutex
	got := map[string]int{}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("admin").SetUsername("admin").SetPassword("admin-pass"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(50)
	if tok := sub.Subscribe("devices/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Topic()]++
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	sc := mustScenario(t, small)
	sim, err := simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: url, Speed: 3600 * 24, Credentials: creds, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	g := simulator.NewGenerator(mustScenario(t, small), start)
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		want[m.Topic("devices")]++
	}
	testenv.Eventually(t, 0, func() error {
		mu.Lock()
		defer mu.Unlock()
		done := true
		for topic, n := range want {
			// The backfill comes in batches: fewer messages, not more.
			done = done && got[topic] > 0 && got[topic] <= n
		}
		for id := range creds {
			done = done && got["devices/"+id+"/status"] == 2 // online, offline
		}
		if !done {
			return fmt.Errorf("received %v (%d topics), want telemetry of %v and two statuses each", got, len(got), want)
		}
		return nil
	})

	creds["fridge-002"] = "wrong"
	sim, err = simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: url, Credentials: creds, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	err = sim.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connect fridge-002") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("run with a wrong secret: %v", err)
	}

	delete(creds, "fridge-003")
	if _, err := simulator.New(simulator.Options{Scenario: sc, Broker: url, Credentials: creds}); err == nil || !strings.Contains(err.Error(), "no credentials for fridge-003") {
		t.Errorf("a device without credentials: %v", err)
	}
	creds["fridge-003"] = "x"
	if _, err := simulator.New(simulator.Options{Scenario: sc, Broker: url, Credentials: creds, Connections: 2}); err == nil || !strings.Contains(err.Error(), "need a connection each") {
		t.Errorf("shared connections with credentials: %v", err)
	}
}

// ReadCredentials takes any input without panicking, and what it accepts
// holds valid device ids and non-empty secrets.
func FuzzReadCredentials(f *testing.F) {
	f.Add("device_id,secret\nfridge-001,abc\n")
	f.Add("a,b\n\"c\",\"d,e\"\n# x\n")
	f.Add("a,b,c\n,\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := simulator.ReadCredentials(strings.NewReader(s), "f.csv")
		if err != nil {
			return
		}
		for id, secret := range got {
			if id == "" || secret == "" || strings.TrimSpace(secret) != secret {
				t.Errorf("accepted %q=%q", id, secret)
			}
		}
	})
}
