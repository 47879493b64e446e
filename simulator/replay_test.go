package simulator_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/simulator"
)

func allMessages(rp *simulator.Replay) []simulator.Message {
	var out []simulator.Message
	for {
		m, ok := rp.Next()
		if !ok {
			return out
		}
		out = append(out, m)
	}
}

func TestReplayCSV(t *testing.T) {
	csv := `ts,unit,temp,amps,note
1767225600000,7,4.1,5.2,ok
1767225660000,7,,5.3,missing temp
1767225600000,8,3.9,4.8,
1767225720000,7,nan,,nothing
`
	rp, err := simulator.ReadReplay(strings.NewReader(csv), "log.csv", simulator.ReplayOptions{
		DeviceCol: "unit", DeviceID: "fridge-%03d", TimeCol: "1", TimeFormat: "unix-ms",
		Metrics: []simulator.MetricColumn{{Column: "temp", Name: "cabinet_temp"}, {Column: "4", Name: "compressor_current"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows, skipped := rp.Rows(); rows != 4 || skipped != 1 {
		t.Errorf("rows %d, skipped %d; want 4, 1", rows, skipped)
	}
	var got []string
	for _, m := range allMessages(rp) {
		got = append(got, m.At.Format("15:04 ")+m.Topic("devices")+" "+string(m.Payload()))
	}
	want := []string{
		`00:00 devices/fridge-007/telemetry {"ts":1767225600000,"metrics":{"cabinet_temp":4.1,"compressor_current":5.2}}`,
		`00:00 devices/fridge-008/telemetry {"ts":1767225600000,"metrics":{"cabinet_temp":3.9,"compressor_current":4.8}}`,
		`00:01 devices/fridge-007/telemetry {"ts":1767225660000,"metrics":{"compressor_current":5.3}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Without --metrics every other column is a metric of its own name.
	rp, err = simulator.ReadReplay(strings.NewReader("device;time;temp;load\npump-1;2026-01-01T00:00:00+01:00;20.5;0.3\n"), "x.csv",
		simulator.ReplayOptions{Sep: "semicolon", DeviceCol: "device", TimeCol: "time"})
	if err != nil {
		t.Fatal(err)
	}
	if ms := allMessages(rp); len(ms) != 1 || string(ms[0].Payload()) != `{"ts":1767222000000,"metrics":{"temp":20.5,"load":0.3}}` || ms[0].Device != "pump-1" {
		t.Errorf("messages: %+v", ms)
	}
}

func TestReplayErrors(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		o         simulator.ReplayOptions
		want      string
	}{
		{"unknown column", "a,b\n1,2\n", simulator.ReplayOptions{DeviceCol: "dev", TimeCol: "a"}, `device column "dev" is not among the columns a,b`},
		{"bad number", "d,t,x\n1,1,2\n1,2,lots\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "unix-s"}, `x.csv:3: column x: "lots" is not a number`},
		{"bad time", "d,t,x\n1,yesterday,2\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t"}, `x.csv:2: time: "yesterday" is not an RFC 3339 time`},
		{"bad device id", "d,t,x\nno way,1,2\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "cycle"}, `x.csv:2: device id "no way" does not match`},
		{"not a number for %d", "d,t,x\npump,1,2\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "cycle", DeviceID: "e-%03d"}, `x.csv:2: device "pump" is not a whole number`},
		{"bad metric name", "d,t,Temp\n1,1,2\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "cycle"}, `metric name "Temp" does not match`},
		{"bad time format", "d,t,x\n1,1,2\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "julian"}, `time format "julian" is not one of`},
		{"short row", "d,t,x\n1\n", simulator.ReplayOptions{DeviceCol: "d", TimeCol: "t", TimeFormat: "cycle"}, `x.csv:2: 1 columns, want at least 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := simulator.ReadReplay(strings.NewReader(tc.csv), "x.csv", tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// cmapssSubset writes the first units of C-MAPSS FD001 to a file and
// returns it with its row count per unit.
func cmapssSubset(tb testing.TB, units int) (string, map[int]int) {
	tb.Helper()
	src := filepath.Join(cmapssDir(tb), "train_FD001.txt")
	f, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	rows := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		var unit int
		if _, err := fmt.Sscan(fields[0], &unit); err != nil || unit > units {
			break
		}
		rows[unit]++
		b.WriteString(sc.Text() + "\n")
	}
	out := filepath.Join(tb.TempDir(), "fd001-head.txt")
	if err := os.WriteFile(out, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return out, rows
}

func cmapssDir(tb testing.TB) string {
	dir := os.Getenv("PROACTIVE_CMAPSS_DIR")
	if dir == "" {
		dir = "/work/shared/datasets/cmapss"
	}
	if _, err := os.Stat(filepath.Join(dir, "train_FD001.txt")); err != nil {
		testenv.RequireService(tb, "C-MAPSS dataset", "NASA C-MAPSS FD001 not found: set PROACTIVE_CMAPSS_DIR to the directory of train_FD001.txt")
	}
	return dir
}

// The cmapss preset maps units to engine-NNN, cycles to hours from
// 2026-01-01 and sensors to the example rules' names.
func TestReplayCMAPSS(t *testing.T) {
	file, rows := cmapssSubset(t, 3)
	rp, err := simulator.LoadReplay(file, simulator.CMAPSS())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rp.Devices(), ","); got != "engine-001,engine-002,engine-003" {
		t.Errorf("devices %s", got)
	}
	first, last := rp.Span()
	longest := max(rows[1], rows[2], rows[3])
	if !first.Equal(simulator.DefaultReplayStart) || !last.Equal(simulator.DefaultReplayStart.Add(time.Duration(longest-1)*time.Hour)) {
		t.Errorf("span %s to %s, want 2026-01-01 to cycle %d", first, last, longest)
	}
	ms := allMessages(rp)
	if len(ms) != rows[1]+rows[2]+rows[3] {
		t.Errorf("%d messages, want %d", len(ms), rows[1]+rows[2]+rows[3])
	}
	// Row 1 of train_FD001.txt: unit 1, cycle 1, sensors 518.67 641.82 ...
	m := ms[0]
	if m.Device != "engine-001" || !strings.HasPrefix(string(m.Payload()), `{"ts":1767225600000,"metrics":{"t2":518.67,"t24":641.82,"t30":1589.7,"t50":1400.6,`) ||
		!strings.Contains(string(m.Payload()), `"ps30":47.47,"phi":521.66,`) || !strings.HasSuffix(string(m.Payload()), `"w31":39.06,"w32":23.419}}`) {
		t.Errorf("first message %s %s", m.Device, m.Payload())
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].At.Before(ms[i-1].At) {
			t.Fatalf("message %d at %s before %s", i, ms[i].At, ms[i-1].At)
		}
	}
}
