package web_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/proactivehq/proactive/web"
)

// The backtest report opened from its file, as an engineer would: every
// chart is drawn, and the page passes the accessibility check at a
// phone's width and a desktop's.
func TestBacktestReportBrowser(t *testing.T) {
	ctx := newBrowser(t)
	for _, c := range []struct {
		name    string
		compare bool
		charts  int
	}{
		// Two lead histograms, alerts per day, the time line, and dev-3's
		// two metrics.
		{"backtest-report", false, 6},
		// And B's alerts per day.
		{"backtest-report-compare", true, 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.html")
			page := writeReport(t, syntheticBacktest(c.compare), web.BacktestReportOptions{Samples: reportSamples, Generated: day(11)})
			if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			do(t, ctx, "open the report",
				chromedp.Navigate("file://"+path),
				chromedp.WaitVisible(chromedp.CSS("h1")),
				chromedp.Poll[chromedp.Void](`document.querySelectorAll(".chart[data-drawn] canvas").length > 0`,
					chromedp.WithPollingTimeout(30*time.Second)),
			)
			charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".chart").length`))
			if err != nil {
				t.Fatal(err)
			}
			// uPlot draws into a canvas of the chart's size.
			drawn, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll(".chart[data-drawn]")).filter(c => {
				const cv = c.querySelector("canvas");
				return cv && cv.width > 100 && cv.height > 50;
			}).length`))
			if err != nil {
				t.Fatal(err)
			}
			if charts != c.charts || drawn != c.charts {
				t.Errorf("%d charts drawn of %d, want %d", drawn, charts, c.charts)
			}
			checkPage(t, ctx, c.name)
		})
	}
}
