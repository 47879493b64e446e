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
		return 0
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
	log, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = log, log
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	Eventually(tb, 0, func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
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
	return port
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
