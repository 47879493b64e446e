package proactive_test

import (
	"testing"

	"github.com/proactivehq/proactive"
)

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"token", "token", 0}, {"tokn", "token", 1}, {"tokenn", "token", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := proactive.EditDistance(c.a, c.b); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
