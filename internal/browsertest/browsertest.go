// Package browsertest drives a headless Chromium (chromedp) for the browser
// tests of the web page and of the whole server: finding the browser,
// running steps with a limit and a useful failure, waiting for a new page,
// screenshots.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/proactivehq/proactive/internal/testenv"
)

// StepLimit bounds one Do: generous, since CI shares two cores with other
// packages' tests.
const StepLimit = 60 * time.Second

// Chromium finds a Chromium or Chrome binary (PROACTIVE_TEST_CHROMIUM, or
// the PATH), or stops the test as a missing service (a failure under
// CI=true).
func Chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROACTIVE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.RequireService(t, "chromium", "no Chromium for the browser tests: apt-get install chromium, or set PROACTIVE_TEST_CHROMIUM")
	return ""
}

// New starts a headless Chromium for the test, 1440×900, and returns a tab;
// the browser ends with the test.
func New(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1440, 900),
	)
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)
	// A backstop: each step has its own, shorter, limit.
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Do runs browser steps within StepLimit, or fails the test saying which
// step and what the page showed.
func Do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	DoWithin(t, ctx, StepLimit, what, steps...)
}

// DoWithin is Do with another limit.
func DoWithin(t *testing.T, ctx context.Context, limit time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := chromedp.Do(step, steps...); err != nil {
		diag, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(diag, chromedp.Location())
		main, _ := chromedp.Run(diag, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, main)
	}
}

// Submit clicks sel, which leaves the page, and waits until the next page
// has loaded.
func Submit(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	Do(t, ctx, what,
		chromedp.Evaluate[chromedp.Void](`window.stalePage = true`),
		chromedp.Click(chromedp.CSS(sel)),
	)
	WaitNewPage(t, ctx, what)
}

// WaitNewPage waits until a page other than the one marked stale (set
// window.stalePage before leaving it) has loaded.
func WaitNewPage(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	// chromedp.Poll would evaluate in the page, but it fails when the page
	// navigates, which is what is awaited; so ask again until it is done.
	testenv.Eventually(t, 45*time.Second, func() error {
		fresh, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stalePage !== true && document.readyState === "complete"`))
		switch {
		case err != nil: // expected while the page navigates
			return fmt.Errorf("%s: no new page yet: %w", what, err)
		case !fresh:
			return fmt.Errorf("%s: no new page", what)
		}
		return nil
	})
}

// Text returns the text of the element sel.
func Text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// Shot saves a full-page PNG of the current page as dir/name.png.
func Shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
