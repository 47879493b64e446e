package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PrivateMosquitto starts a Mosquitto of the test's own on a free 127.0.0.1 port
// with the listener line and extra configuration lines given (conf may use
// {{port}} and {{dir}}, the test's config directory), and stops it at cleanup. Tests
// use it where the shared broker's settings do not fit: TLS, passwords, a
// broker to restart, or raised in-flight limits. It returns the port.
//
// listener is the whole listener block, for example "listener {{port}} 127.0.0.1"
// followed by TLS settings. The mosquitto binary comes from PATH or
// $PROACTIVE_MOSQUITTO; without it the test fails under CI=true and skips
// otherwise.
func PrivateMosquitto(tb testing.TB, conf string) int {
	tb.Helper()
	m := RestartableMosquitto(tb, conf)
	if m == nil {
		return 0
	}
	return m.Port
}

// MosquittoServer is a private Mosquitto that a test may stop and start
// again on the same port, as an outage of the broker.
type MosquittoServer struct {
	// Port is the 127.0.0.1 port it listens on.
	Port int

	bin, conf, logPath string
	cmd                *exec.Cmd
	exited             chan struct{}
}

// RestartableMosquitto starts a private Mosquitto as PrivateMosquitto does
// and returns it, to Stop and Start again; nil when the test is skipped.
func RestartableMosquitto(tb testing.TB, conf string) *MosquittoServer {
	tb.Helper()
	bin := os.Getenv("PROACTIVE_MOSQUITTO")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
				bin = "/usr/sbin/mosquitto"
			}
		}
	}
	if bin == "" {
		RequireService(tb, "mosquitto", "mosquitto binary not found: install Debian's mosquitto package")
		return nil
	}
	dir := tb.TempDir()
	port := FreePort(tb)
	text := strings.NewReplacer("{{port}}", strconv.Itoa(port), "{{dir}}", dir).Replace(conf)
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to its own user and then
		// fail to read the test's private files.
		text = "user root\n" + text
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	m := &MosquittoServer{Port: port, bin: bin, conf: path, logPath: filepath.Join(dir, "mosquitto.log")}
	m.Start(tb)
	tb.Cleanup(func() { m.Stop(tb) })
	return m
}

// Start starts the broker (again) and waits until it listens.
func (m *MosquittoServer) Start(tb testing.TB) {
	tb.Helper()
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = log, log
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	m.cmd, m.exited = cmd, exited
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
	Eventually(tb, 0, func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(m.logPath)
			tb.Fatalf("mosquitto exited at start:\n%s", b)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return fmt.Errorf("mosquitto not listening on %s: %w", addr, err)
		}
		c.Close()
		return nil
	})
}

// Stop kills the broker, as a crash or an outage would, and waits for it to
// exit; stopping a stopped broker does nothing.
func (m *MosquittoServer) Stop(tb testing.TB) {
	tb.Helper()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// MosquittoPasswordFile writes a Mosquitto password file holding user with
// password, using mosquitto_passwd, and returns its path.
func MosquittoPasswordFile(tb testing.TB, user, password string) string {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		RequireService(tb, "mosquitto_passwd", "mosquitto_passwd not found: install Debian's mosquitto package")
		return ""
	}
	path := filepath.Join(tb.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", path, user, password).CombinedOutput(); err != nil {
		tb.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	return path
}
