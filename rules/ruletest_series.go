package rules

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxTestSteps bounds the steps of one rule test: the values of one series
// and the clock steps up to run_until. A slip such as "4x1000000000" is
// refused instead of filling memory.
const MaxTestSteps = 1 << 20

// maxSeriesDepth bounds the nesting of groups in a series.
const maxSeriesDepth = 8

// ParseSeries expands the series notation of rule test files into one value
// per step, with NaN for a step without a sample. Values are separated by
// white space:
//
//	4.1          one value
//	_            no sample at this step
//	4x3          4 repeated: n+1 values (4 4 4 4)
//	_x3          n+1 steps without a sample
//	4+0.5x3      a, a+b, ..., a+n*b: n+1 values (4 4.5 5 5.5)
//	4-0.5x3      the same with a negative step (4 3.5 3 2.5)
//	(4 4.2 3.8)  a group; (…)xn repeats it n+1 times, like axn
//
// As in `promtool test rules`, "xn" always means n+1 values, the first
// one and n more. Steps are computed as a+i*b, so long ramps do not drift.
// Values must be finite numbers. The whole series may have at most
// MaxTestSteps values.
func ParseSeries(s string) ([]float64, error) {
	p := &seriesParser{src: s}
	if err := p.items(0); err != nil {
		return nil, err
	}
	if len(p.out) == 0 {
		return nil, errors.New("empty series (write values such as \"4 4.1 4.2\" or \"4x59\")")
	}
	return p.out, nil
}

type seriesParser struct {
	src string
	i   int
	out []float64
}

func isSeriesSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// items reads values and groups up to the end of the input, or up to the
// ")" that closes a group when depth > 0.
func (p *seriesParser) items(depth int) error {
	for {
		for p.i < len(p.src) && isSeriesSpace(p.src[p.i]) {
			p.i++
		}
		if p.i == len(p.src) {
			if depth > 0 {
				return errors.New(`group not closed: missing ")"`)
			}
			return nil
		}
		switch p.src[p.i] {
		case ')':
			if depth == 0 {
				return fmt.Errorf(`unexpected ")" at column %d`, p.i+1)
			}
			return nil
		case '(':
			if err := p.group(depth); err != nil {
				return err
			}
			continue
		}
		start := p.i
		for p.i < len(p.src) && !isSeriesSpace(p.src[p.i]) && p.src[p.i] != '(' && p.src[p.i] != ')' {
			p.i++
		}
		if err := p.token(p.src[start:p.i]); err != nil {
			return err
		}
	}
}

// group reads "(items)" with an optional "xn" right after the ")".
func (p *seriesParser) group(depth int) error {
	if depth+1 > maxSeriesDepth {
		return fmt.Errorf("groups nested more than %d deep", maxSeriesDepth)
	}
	open := p.i
	p.i++ // "("
	first := len(p.out)
	if err := p.items(depth + 1); err != nil {
		return err
	}
	p.i++ // ")"
	if len(p.out) == first {
		return fmt.Errorf("empty group at column %d", open+1)
	}
	reps := uint64(0)
	if p.i < len(p.src) && p.src[p.i] == 'x' {
		p.i++
		start := p.i
		for p.i < len(p.src) && !isSeriesSpace(p.src[p.i]) && p.src[p.i] != '(' && p.src[p.i] != ')' {
			p.i++
		}
		n, err := seriesCount(p.src[start:p.i], p.src[open:p.i])
		if err != nil {
			return err
		}
		reps = n
	} else if p.i < len(p.src) && !isSeriesSpace(p.src[p.i]) && p.src[p.i] != '(' && p.src[p.i] != ')' {
		return fmt.Errorf("%q after a group at column %d: expected a space or xN", p.src[p.i:], p.i+1)
	}
	group := p.out[first:]
	if uint64(len(p.out))+reps*uint64(len(group)) > MaxTestSteps {
		return seriesTooLong()
	}
	for range reps {
		p.out = append(p.out, p.out[first:first+len(group)]...)
	}
	return nil
}

// token reads one value: "a", "_", "axn", "_xn", "a+bxn" or "a-bxn".
func (p *seriesParser) token(tok string) error {
	head, count, hasCount := tok, "", false
	if x := strings.LastIndexByte(tok, 'x'); x >= 0 {
		head, count, hasCount = tok[:x], tok[x+1:], true
	}
	n := uint64(0)
	if hasCount {
		var err error
		if n, err = seriesCount(count, tok); err != nil {
			return err
		}
	}
	if n+1 > MaxTestSteps-uint64(len(p.out)) {
		return seriesTooLong()
	}
	if head == "_" {
		for range n + 1 {
			p.out = append(p.out, math.NaN())
		}
		return nil
	}
	if head == "" {
		return fmt.Errorf("%q: missing value before x (write e.g. 4x10 or _x10)", tok)
	}
	// The sign of a step: a '+' or '-' after the first character that is
	// not the sign of an exponent.
	split := -1
	for j := 1; j < len(head); j++ {
		if (head[j] == '+' || head[j] == '-') && head[j-1] != 'e' && head[j-1] != 'E' {
			split = j
			break
		}
	}
	if split < 0 {
		v, err := seriesNumber(head, tok)
		if err != nil {
			return err
		}
		for range n + 1 {
			p.out = append(p.out, v)
		}
		return nil
	}
	if !hasCount {
		return fmt.Errorf("%q: a step needs a count, like %sx10", tok, tok)
	}
	a, err := seriesNumber(head[:split], tok)
	if err != nil {
		return err
	}
	b, err := seriesNumber(head[split:], tok)
	if err != nil {
		return err
	}
	for i := range n + 1 {
		v := a + float64(i)*b
		if math.IsInf(v, 0) {
			return fmt.Errorf("%q: the values overflow", tok)
		}
		p.out = append(p.out, v)
	}
	return nil
}

func seriesNumber(s, tok string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		if s == "_" {
			return 0, fmt.Errorf("%q: a gap has no step; write _xN", tok)
		}
		return 0, fmt.Errorf("%q: %q is not a number", tok, s)
	}
	return v, nil
}

func seriesCount(s, tok string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("%q: missing count after x", tok)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q: count %q after x is not a whole number", tok, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n >= MaxTestSteps {
		return 0, seriesTooLong()
	}
	return n, nil
}

func seriesTooLong() error {
	return fmt.Errorf("series longer than %d steps", MaxTestSteps)
}
