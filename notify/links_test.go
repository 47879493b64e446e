package notify_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

var codeRE = regexp.MustCompile(`/c/([A-Za-z0-9_-]{22})(\s|$)`)

// TestCustomerLinks: the offer carries a link to the ticket's page, whose
// code opens that ticket only; without a public URL there is no link.
func TestCustomerLinks(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	e.fire("fridge-1", "compressor")
	offer := e.wantSent("+33611111111", 1)[0]
	m := codeRE.FindStringSubmatch(offer)
	if m == nil || !strings.Contains(offer, e.web.URL+notify.LinkPath+m[1]) {
		t.Fatalf("offer without a link to %s:\n%s", e.web.URL, offer)
	}
	pg, err := e.n.CustomerPage(e.ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if pg.Status != proactive.TicketOffered || pg.Device != "fridge-a200" || pg.Forecast == "" ||
		!slices.Equal(pg.Actions, []string{notify.PageBook, notify.PageCall, notify.PageNo}) || len(pg.Offered) != 3 ||
		len(pg.Free) <= 3 {
		t.Errorf("page %+v", pg)
	}
	for _, code := range []string{"", "x", strings.Repeat("A", 22), m[1][:21] + "!"} {
		if _, err := e.n.CustomerPage(e.ctx, code); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("code %q: %v, want ENotFound", code, err)
		}
	}

	dev := newEnv(t, testenv.SQLite(t), func(o *notify.Options) { o.PublicURL = "" })
	dev.fire("fridge-1", "compressor")
	if offer := dev.wantSent("+33611111111", 1)[0]; strings.Contains(offer, "/c/") {
		t.Errorf("an offer without a public URL has a link:\n%s", offer)
	}
}
