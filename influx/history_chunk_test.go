package influx

import (
	"testing"
	"time"
)

func TestNextChunk(t *testing.T) {
	h := time.Hour
	for _, c := range []struct {
		span, got time.Duration
		rows      int
		want      time.Duration
	}{
		{h, h, 0, 4 * h},               // no data: grow 4x
		{h, h, 100, 4 * h},             // sparse: grow at most 4x a step
		{h, h, chunkRows, h},           // on target
		{h, h, 2 * chunkRows, h / 2},   // twice the target: halve
		{h, h, 100 * chunkRows, h / 4}, // far too many: shrink at most 4x a step
		{4 * time.Minute, 4 * time.Minute, 100 * chunkRows, time.Minute}, // never under a minute
		{5 * 24 * h, 5 * 24 * h, 0, 7 * 24 * h},                          // never over a week
		{h, h / 2, 0, h},                                                 // a short last chunk keeps the span
	} {
		if got := nextChunk(c.span, c.got, c.rows); got != c.want {
			t.Errorf("nextChunk(%v, %v, %d) = %v, want %v", c.span, c.got, c.rows, got, c.want)
		}
	}
}
