package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Every read is InfluxQL through the v1 /query API, which InfluxDB 1.8,
// 2.x (through its DBRP mapping of database and retention policy to a
// bucket) and 3.x all serve; Flux is absent from 3.x and off by default
// in 1.8. The v2 client speaks only Flux, so the queries go as plain HTTP
// through its HTTP service, which adds the "Token …" authorization.

// maxGetQuery is the longest statement text sent in a GET's URL; longer
// ones go as a POST form, which 1.8 and 2.x take too, so that no proxy
// refuses a long URL.
const maxGetQuery = 4096

var (
	stringEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	identEscaper  = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
)

// quoteString quotes s as an InfluxQL string literal. InfluxQL's scanner
// knows the escapes \\, \', \" and \n and ends a literal at a raw line
// break, so escaping those leaves no way out of the literal.
func quoteString(s string) string { return `'` + stringEscaper.Replace(s) + `'` }

// quoteIdent quotes s as an InfluxQL identifier (measurement, tag, field),
// escaped like quoteString.
func quoteIdent(s string) string { return `"` + identEscaper.Replace(s) + `"` }

// timeLiteral is t as an InfluxQL time literal.
func timeLiteral(t time.Time) string { return quoteString(t.UTC().Format(time.RFC3339Nano)) }

// timeRange is the condition time in [from, to).
func timeRange(from, to time.Time) string {
	return "time >= " + timeLiteral(from) + " AND time < " + timeLiteral(to)
}

// resultSeries is one series of an InfluxQL result, or a piece of one: with
// chunked=true a long series comes in several pieces, one after another,
// each with its name, tags and columns. Numbers are json.Number.
type resultSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// column returns the index of the column named name, or -1.
func (sr *resultSeries) column(name string) int {
	for i, c := range sr.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// queryResponse is one JSON object of a (chunked) /query response.
type queryResponse struct {
	Results []struct {
		StatementID int            `json:"statement_id"`
		Series      []resultSeries `json:"series"`
		Error       string         `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// queryURL returns the /query URL of the bucket "database/retention
// policy" (or "database": the default retention policy), asking for
// nanosecond epoch times and a chunked (streamed) response.
func queryURL(serverURL, bucket string) string {
	db, rp, _ := strings.Cut(bucket, "/")
	q := url.Values{"db": {db}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {"10000"}}
	if rp != "" {
		q.Set("rp", rp)
	}
	return strings.TrimSuffix(serverURL, "/") + "/query?" + q.Encode()
}

// influxQL runs the InfluxQL statements q (separated by semicolons) and
// calls fn with each series of their results as it arrives, statement by
// statement; a series split by chunking comes in several calls. It stops
// at the first error fn returns and returns it, returns the first error
// InfluxDB reports, and once ctx is done returns ctx's error.
func (s *Store) influxQL(ctx context.Context, q string, fn func(stmt int, sr *resultSeries) error) error {
	var req *http.Request
	var err error
	if len(q) <= maxGetQuery {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.queryURL+"&"+url.Values{"q": {q}}.Encode(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.queryURL, strings.NewReader(url.Values{"q": {q}}.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return fmt.Errorf("query influxdb: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.query.Do(req)
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("query influxdb: %w", unwrapURL(err)))
	}
	defer resp.Body.Close()
	// A pause of queryTimeout in the stream ends the read; the stream as a
	// whole may take as long as ctx allows.
	stalled := time.AfterFunc(s.queryTimeout, func() { resp.Body.Close() })
	defer stalled.Stop()
	resp.Body = &resetOnRead{ReadCloser: resp.Body, timer: stalled, d: s.queryTimeout}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("query influxdb: %s: %s", resp.Status, errorText(body))
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	for {
		var r queryResponse
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if !stalled.Stop() && ctx.Err() == nil {
				return fmt.Errorf("read influxdb query result: no data for %s", s.queryTimeout)
			}
			return ctxOr(ctx, fmt.Errorf("read influxdb query result: %w", unwrapURL(err)))
		}
		if r.Error != "" {
			return fmt.Errorf("query influxdb: %s", r.Error)
		}
		for _, res := range r.Results {
			if res.Error != "" {
				return fmt.Errorf("query influxdb: %s", res.Error)
			}
			for i := range res.Series {
				if err := fn(res.StatementID, &res.Series[i]); err != nil {
					return err
				}
			}
		}
	}
}

// resetOnRead restarts timer on every read that returns data.
type resetOnRead struct {
	io.ReadCloser
	timer *time.Timer
	d     time.Duration
}

func (r *resetOnRead) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.timer.Reset(r.d)
	}
	return n, err
}

// ctxOr returns ctx's error once ctx is done, else err: a cancelled read
// surfaces as a transport error.
func ctxOr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// unwrapURL drops a *url.Error's method and URL, which holds the whole
// query, from err.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorText is the message of an error response: its JSON "error" (1.8,
// 3.x) or "message" (2.x), else the body itself.
func errorText(body []byte) string {
	var e struct{ Error, Message string }
	if json.Unmarshal(body, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if e.Message != "" {
			return e.Message
		}
	}
	return strings.TrimSpace(string(body))
}

// epochTime reads a time column of a result asked for with epoch=ns.
func epochTime(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns).UTC(), true
}

// number reads a numeric cell; a null, a string or a bool is not one.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// text reads a string cell; a null is "".
func text(v any) string {
	s, _ := v.(string)
	return s
}
