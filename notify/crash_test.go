package notify_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
	"github.com/proactivehq/proactive/notify/twilio"
)

// TestMain lets a test run a notifier in a child process (this test binary)
// and kill it with SIGKILL.
func TestMain(m *testing.M) {
	if mode := os.Getenv("NOTIFY_CRASH_CHILD"); mode != "" {
		if err := crashChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// crashChild commits an alert's ticket and offer, says so on stdout, and
// then either waits to be killed ("commit") or first starts sending
// ("send"; the parent's fake Twilio hangs).
func crashChild(mode string) error {
	ctx := context.Background()
	now := func() time.Time { return monday0830 }
	st, err := devices.OpenOptions(ctx, os.Getenv("NOTIFY_DSN"), devices.Options{Now: now})
	if err != nil {
		return err
	}
	sender, err := twilio.New(twilio.Options{AccountSID: "AC0123456789", AuthToken: authToken, From: "+15005550006",
		APIURL: os.Getenv("NOTIFY_TWILIO"), Timeout: time.Hour})
	if err != nil {
		return err
	}
	n := notify.New(notify.Options{Store: st, Sender: sender, PublicURL: os.Getenv("NOTIFY_PUBLIC_URL"),
		Now: now, SendTimeout: time.Hour})
	n.Alerts(ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, now())})
	fmt.Println("COMMITTED")
	if mode == "send" {
		_ = n.Poll(ctx)
	}
	select {}
}

func TestKilledBetweenCommitAndSend(t *testing.T) {
	for _, mode := range []string{"commit", "send"} {
		t.Run(mode, func(t *testing.T) {
			testenv.EachDialect(t, func(t *testing.T, dsn string) {
				e := newEnv(t, dsn, nil)
				if mode == "send" {
					e.tw.Then(faketwilio.Hang)
				}
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "NOTIFY_CRASH_CHILD="+mode, "NOTIFY_DSN="+dsn,
					"NOTIFY_TWILIO="+e.tw.URL, "NOTIFY_PUBLIC_URL="+e.web.URL)
				cmd.Stderr = os.Stderr
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				line := make(chan string, 1)
				go func() {
					s, _ := bufio.NewReader(out).ReadString('\n')
					line <- s
				}()
				select {
				case s := <-line:
					if strings.TrimSpace(s) != "COMMITTED" {
						t.Fatalf("child said %q", s)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("child did not commit in 30s")
				}
				if mode == "send" {
					select {
					case <-e.tw.Received:
					case <-time.After(30 * time.Second):
						t.Fatal("child did not send in 30s")
					}
				}
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
				before := len(e.tw.Posts())

				// A new process on the same database.
				n := e.notifier(nil)
				e.clock.Add(2 * time.Minute)
				for range 3 {
					if err := n.Poll(e.ctx); err != nil {
						t.Fatal(err)
					}
					e.clock.Add(time.Minute)
				}
				got := e.wantSent(alice, 1)
				contains(t, got[0], "1) Mon 9 Mar 10:30-12:30")
				if posts := len(e.tw.Posts()); posts != 1 {
					t.Errorf("%d posts to Twilio (%d before the restart), want exactly 1", posts, before)
				}
				msgs := must(n.Messages(e.ctx, e.ticket("fridge-1", "compressor").ID, ""))
				if len(msgs) != 1 || msgs[0].Status != "sent" || msgs[0].SID != e.tw.Messages()[0].SID {
					t.Errorf("outbox = %+v", msgs)
				}
			})
		})
	}
}
