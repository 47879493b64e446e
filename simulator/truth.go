package simulator

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// TruthCSVHeader is the header line of ground truth written as CSV. kind
// is fault or decoy; repaired is when maintenance ended the fault (empty:
// never). The last column, time, is when the component fails (its
// breakdown, or its onset for a fault without one), and is empty for a
// decoy, so that the file serves as it is as the failures of `proactive
// rules backtest --failures`, which skips decoys.
const TruthCSVHeader = "device,model,component,fault,kind,shape,onset,breakdown,then,repaired,time"

// truthCSVHeaderV1 is the header of truth files written before decoys
// and repairs; ReadTruth still reads them.
const truthCSVHeaderV1 = "device,model,component,fault,shape,onset,breakdown,then,time"

// AppendJSON appends the fault as one line of JSON (without newline):
// {"device":…,"model":…,"component":…,"fault":…,"kind":fault|decoy,
// "shape":…,"onset":RFC 3339,"breakdown":RFC 3339 (absent when the fault
// has none),"then":… (absent for a decoy),"repaired":RFC 3339 (absent when
// never)}.
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
	if t.IsDecoy() {
		failed = "" // no failure behind it
	}
	_ = cw.Write([]string{w.Device, w.Model, w.Component, w.Fault, string(w.Kind), string(w.Shape), w.Onset, w.Breakdown,
		string(w.Then), w.Repaired, failed})
	cw.Flush()
	return append(b, strings.TrimRight(sb.String(), "\n")...)
}

type truthWire struct {
	Device    string    `json:"device"`
	Model     string    `json:"model"`
	Component string    `json:"component"`
	Fault     string    `json:"fault"`
	Kind      TruthKind `json:"kind,omitempty"`
	Shape     Shape     `json:"shape"`
	Onset     string    `json:"onset"`
	Breakdown string    `json:"breakdown,omitempty"`
	Then      Then      `json:"then,omitempty"`
	Repaired  string    `json:"repaired,omitempty"`
}

func (t Truth) wire() truthWire {
	w := truthWire{Device: t.Device, Model: t.Model, Component: t.Component, Fault: t.Fault, Kind: t.Kind, Shape: t.Shape,
		Onset: t.Onset.UTC().Format(time.RFC3339Nano), Then: t.Then}
	if w.Kind == "" {
		w.Kind = KindFault
	}
	if !t.Breakdown.IsZero() {
		w.Breakdown = t.Breakdown.UTC().Format(time.RFC3339Nano)
	}
	if !t.Repaired.IsZero() {
		w.Repaired = t.Repaired.UTC().Format(time.RFC3339Nano)
	}
	return w
}

// ReadTruth reads ground truth as Run writes it, JSON lines or CSV (told
// apart by the first line), including files written before decoys and
// repairs (no kind: every row a fault).
func ReadTruth(r io.Reader) ([]Truth, error) {
	br := bufio.NewReader(r)
	first, _ := br.Peek(len(TruthCSVHeader))
	var out []Truth
	if strings.HasPrefix(string(first), TruthCSVHeader) || strings.HasPrefix(string(first), truthCSVHeaderV1) {
		rows, err := csv.NewReader(br).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("ground truth: %w", err)
		}
		v1 := strings.Join(rows[0], ",") == truthCSVHeaderV1
		for i, row := range rows[1:] {
			var w truthWire
			switch {
			case v1 && len(row) == 9:
				w = truthWire{Device: row[0], Model: row[1], Component: row[2], Fault: row[3], Shape: Shape(row[4]),
					Onset: row[5], Breakdown: row[6], Then: Then(row[7])}
			case !v1 && len(row) == 11:
				w = truthWire{Device: row[0], Model: row[1], Component: row[2], Fault: row[3], Kind: TruthKind(row[4]),
					Shape: Shape(row[5]), Onset: row[6], Breakdown: row[7], Then: Then(row[8]), Repaired: row[9]}
			default:
				return nil, fmt.Errorf("ground truth line %d: %d fields, want %d", i+2, len(row), len(rows[0]))
			}
			t, err := truthFrom(w)
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
	t := Truth{Device: w.Device, Model: w.Model, Component: w.Component, Fault: w.Fault, Shape: w.Shape, Then: w.Then, Kind: w.Kind}
	switch t.Kind {
	case "":
		t.Kind = KindFault
	case KindFault, KindDecoy:
	default:
		return t, fmt.Errorf("kind %q is not fault or decoy", w.Kind)
	}
	var err error
	if t.Onset, err = time.Parse(time.RFC3339Nano, w.Onset); err != nil {
		return t, fmt.Errorf("onset: %w", err)
	}
	if w.Breakdown != "" {
		if t.Breakdown, err = time.Parse(time.RFC3339Nano, w.Breakdown); err != nil {
			return t, fmt.Errorf("breakdown: %w", err)
		}
	}
	if w.Repaired != "" {
		if t.Repaired, err = time.Parse(time.RFC3339Nano, w.Repaired); err != nil {
			return t, fmt.Errorf("repaired: %w", err)
		}
	}
	return t, nil
}

// MaintenanceCSVHeader is the header of the maintenance records the
// simulator writes (Options.Maintenance), the columns of `proactive devices
// import --maintenance`.
const MaintenanceCSVHeader = "device_id,time,component,kind,notes"

// AppendMaintenanceCSV appends m as a CSV row in the order of
// MaintenanceCSVHeader (without newline), its time in RFC 3339.
func AppendMaintenanceCSV(b []byte, m proactive.Maintenance) []byte {
	var sb strings.Builder
	cw := csv.NewWriter(&sb)
	_ = cw.Write([]string{string(m.Device), m.Time.UTC().Format(time.RFC3339Nano), m.Component, string(m.Kind), m.Notes})
	cw.Flush()
	return append(b, strings.TrimRight(sb.String(), "\n")...)
}
