package simulator

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// TruthCSVHeader is the header line of ground truth written as CSV. The
// last column, time, is when the component fails (its breakdown, or its
// onset for a fault without one), so that the file serves as it is as the
// failures of `proactive rules backtest --failures`.
const TruthCSVHeader = "device,model,component,fault,shape,onset,breakdown,then,time"

// AppendJSON appends the fault as one line of JSON (without newline):
// {"device":…,"model":…,"component":…,"fault":…,"shape":…,"onset":RFC 3339,
// "breakdown":RFC 3339 (absent when the fault has none),"then":…}.
func (t Truth) AppendJSON(b []byte) []byte {
	out, _ := json.Marshal(t.wire())
	return append(b, out...)
}

// AppendCSV appends the fault as a CSV row in the order of TruthCSVHeader
// (without newline).
func (t Truth) AppendCSV(b []byte) []byte {
	w := t.wire()
	var sb strings.Builder
	cw := csv.NewWriter(&sb)
	failed := w.Breakdown
	if failed == "" {
		failed = w.Onset
	}
	_ = cw.Write([]string{w.Device, w.Model, w.Component, w.Fault, string(w.Shape), w.Onset, w.Breakdown, string(w.Then), failed})
	cw.Flush()
	return append(b, strings.TrimRight(sb.String(), "\n")...)
}

type truthWire struct {
	Device    string `json:"device"`
	Model     string `json:"model"`
	Component string `json:"component"`
	Fault     string `json:"fault"`
	Shape     Shape  `json:"shape"`
	Onset     string `json:"onset"`
	Breakdown string `json:"breakdown,omitempty"`
	Then      Then   `json:"then"`
}

func (t Truth) wire() truthWire {
	w := truthWire{Device: t.Device, Model: t.Model, Component: t.Component, Fault: t.Fault, Shape: t.Shape,
		Onset: t.Onset.UTC().Format(time.RFC3339Nano), Then: t.Then}
	if !t.Breakdown.IsZero() {
		w.Breakdown = t.Breakdown.UTC().Format(time.RFC3339Nano)
	}
	return w
}

// ReadTruth reads ground truth as Run writes it, JSON lines or CSV (told
// apart by the first line).
func ReadTruth(r io.Reader) ([]Truth, error) {
	br := bufio.NewReader(r)
	first, _ := br.Peek(len(TruthCSVHeader))
	var out []Truth
	if string(first) == TruthCSVHeader {
		rows, err := csv.NewReader(br).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("ground truth: %w", err)
		}
		for i, row := range rows[1:] {
			if len(row) != 9 {
				return nil, fmt.Errorf("ground truth line %d: %d fields, want 9", i+2, len(row))
			}
			t, err := truthFrom(truthWire{row[0], row[1], row[2], row[3], Shape(row[4]), row[5], row[6], Then(row[7])})
			if err != nil {
				return nil, fmt.Errorf("ground truth line %d: %w", i+2, err)
			}
			out = append(out, t)
		}
		return out, nil
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	for line := 1; dec.More(); line++ {
		var w truthWire
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("ground truth record %d: %w", line, err)
		}
		t, err := truthFrom(w)
		if err != nil {
			return nil, fmt.Errorf("ground truth record %d: %w", line, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func truthFrom(w truthWire) (Truth, error) {
	t := Truth{Device: w.Device, Model: w.Model, Component: w.Component, Fault: w.Fault, Shape: w.Shape, Then: w.Then}
	var err error
	if t.Onset, err = time.Parse(time.RFC3339Nano, w.Onset); err != nil {
		return t, fmt.Errorf("onset: %w", err)
	}
	if w.Breakdown != "" {
		if t.Breakdown, err = time.Parse(time.RFC3339Nano, w.Breakdown); err != nil {
			return t, fmt.Errorf("breakdown: %w", err)
		}
	}
	return t, nil
}
