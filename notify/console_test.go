package notify_test

import (
	"strings"
	"testing"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// The console's hint after each message matches the conversation's stage,
// not the message's kind alone: HELP during an offer still invites a slot
// number; after booking, moving the visit or CALL (never CANCEL, an
// opt-out keyword); after STOP, only START.
func TestConsoleHintFollowsConversation(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	out := &testenv.Buffer{}
	e.n = e.notifier(func(o *notify.Options) { o.Sender = notify.NewConsoleSender(out) })
	phone := "+33611111111"
	e.fire("fridge-1", "compressor")
	steps := []struct {
		reply, kind, hint string
	}{
		{"", "offer", "a slot number to book, CALL to be called, NO to decline"},
		{"HELP", "help", "a slot number to book, CALL to be called, NO to decline"},
		{"1", "confirm", "another slot number of the offer to move the visit, CALL to change or cancel it"},
		{"HELP", "help", "another slot number of the offer to move the visit"},
		{"STOP", "opt_out", "START to get messages again"},
	}
	for i, s := range steps {
		if s.reply != "" {
			if code := e.reply(phone, s.reply); code != 200 {
				t.Fatalf("reply %q: %d", s.reply, code)
			}
			e.poll()
		}
		blocks := strings.Split(out.String(), "── SMS to ")[1:]
		if len(blocks) != i+1 {
			t.Fatalf("after %q: %d messages printed, want %d:\n%s", s.reply, len(blocks), i+1, out)
		}
		last := blocks[i]
		if !strings.Contains(last, "("+s.kind+",") {
			t.Errorf("after %q: printed %q, want a %s message", s.reply, last, s.kind)
		}
		if !strings.Contains(last, "the customer may reply "+s.hint) {
			t.Errorf("after %q: hint in %q, want %q", s.reply, last, s.hint)
		}
	}
}

// After the visit the hints follow the surveys: the satisfaction score,
// then the NPS question's 0 to 10 and the CES question's 1 to 5 (they
// invited only CALL, which those questions do not ask for).
func TestConsoleHintFollowsSurveys(t *testing.T) {
	out := &testenv.Buffer{}
	e := newEnv(t, testenv.SQLite(t), func(o *notify.Options) { o.Sender, o.CES = notify.NewConsoleSender(out), true })
	phone := alice
	e.visitDone("fridge-1", "compressor")
	steps := []struct {
		reply, kind, hint string
	}{
		{"", "survey", "1 to 5 to rate the visit"},
		{"5", "nps", "0 to 10: how likely they are to recommend us"},
		{"9", "ces", "1 to 5: how easy the fix was"},
	}
	for _, s := range steps {
		if s.reply != "" {
			if code := e.reply(phone, s.reply); code != 200 {
				t.Fatalf("reply %q: %d", s.reply, code)
			}
			e.poll()
		}
		blocks := strings.Split(out.String(), "── SMS to ")
		last := blocks[len(blocks)-1]
		if !strings.Contains(last, "("+s.kind+",") {
			t.Fatalf("after %q: printed %q, want a %s message", s.reply, last, s.kind)
		}
		if !strings.Contains(last, "the customer may reply "+s.hint) {
			t.Errorf("after %q: hint in %q, want %q", s.reply, last, s.hint)
		}
	}
}
