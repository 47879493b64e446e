package influx

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, str, ident string }{
		{`pump-1`, `'pump-1'`, `"pump-1"`},
		{`o'brien`, `'o\'brien'`, `"o'brien"`},
		{`a"b`, `'a"b'`, `"a\"b"`},
		{`a\b`, `'a\\b'`, `"a\\b"`},
		{"x\ny", `'x\ny'`, `"x\ny"`},
		{`' OR ''='`, `'\' OR \'\'=\''`, `"' OR ''='"`},
	} {
		if got := quoteString(c.in); got != c.str {
			t.Errorf("quoteString(%q) = %s, want %s", c.in, got, c.str)
		}
		if got := quoteIdent(c.in); got != c.ident {
			t.Errorf("quoteIdent(%q) = %s, want %s", c.in, got, c.ident)
		}
	}
}

// Identifiers and string literals with quotes and backslashes select
// exactly what they name on a real influxd, and an injection attempt
// selects nothing.
func TestQuoteRoundTrip(t *testing.T) {
	srv := testenv.Influx(t)
	s := New(Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(s.Close)
	at := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	// Line protocol escapes only commas, equals signs and spaces in keys
	// and tag values: quotes and backslashes are literal.
	srv.Write(t, fmt.Sprintf("m\"e'as,tag=o'b\\r\"x we\"ir'd\\f=1 %d\nm\"e'as,tag=plain we\"ir'd\\f=2 %d\n", at.UnixMilli(), at.Add(time.Second).UnixMilli()))
	for _, c := range []struct {
		tag  string
		want []string
	}{
		{`o'b\r"x`, []string{"1"}},
		{`plain`, []string{"2"}},
		{`' OR ''='`, nil},
		{`plain' OR tag <> '`, nil},
	} {
		q := "SELECT " + quoteIdent(`we"ir'd\f`) + " FROM " + quoteIdent(`m"e'as`) + " WHERE " + quoteIdent("tag") + " = " + quoteString(c.tag)
		var got []string
		err := s.influxQL(t.Context(), q, func(_ int, sr *resultSeries) error {
			for _, row := range sr.Values {
				got = append(got, fmt.Sprint(row[1]))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: got %v, want %v", q, got, c.want)
		}
	}
}

func TestQueryURL(t *testing.T) {
	for bucket, want := range map[string]string{
		"telemetry/autogen": "http://h:8086/query?chunk_size=10000&chunked=true&db=telemetry&epoch=ns&rp=autogen",
		"telemetry":         "http://h:8086/query?chunk_size=10000&chunked=true&db=telemetry&epoch=ns",
		"a b/c/d":           "http://h:8086/query?chunk_size=10000&chunked=true&db=a+b&epoch=ns&rp=c%2Fd",
	} {
		if got := queryURL("http://h:8086/", bucket); got != want {
			t.Errorf("queryURL(%q) = %s, want %s", bucket, got, want)
		}
	}
}

// Rows of one time come sorted; a time going back is an error, not a
// silently broken order.
func TestSameTime(t *testing.T) {
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	emit := func(s string) error { got = append(got, s); return nil }
	st := sameTime[string]{less: strings.Compare}
	for _, r := range []struct {
		at  time.Time
		row string
	}{{t0, "b"}, {t0, "a"}, {t0.Add(time.Second), "d"}, {t0.Add(time.Second), "c"}} {
		if err := st.add(r.at, r.row, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.flush(emit); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "abcd" {
		t.Errorf("rows in order %v, want a b c d", got)
	}
	if err := st.add(t0.Add(time.Second), "e", emit); err != nil {
		t.Fatal(err)
	}
	if err := st.add(t0, "f", emit); err == nil || !strings.Contains(err.Error(), "out of time order") {
		t.Errorf("a time going back: %v", err)
	}
}
