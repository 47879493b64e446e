package config

import (
	"slices"
	"strings"

	"github.com/proactivehq/proactive"
)

// candidate is a known name for "did you mean" hints: the name compared,
// its last part (the key's last segment) and the name to suggest, which
// differs only for a variable whose env tag renames it (rules.paths is
// PROACTIVE_RULES, not PROACTIVE_RULES_PATHS).
type candidate struct{ name, last, suggest string }

// nearest returns the suggestion of the candidate closest to name.
// Closeness is the edit distance of the whole names, or of one of tails
// (parts of name: the key without its section) and the candidate's last
// part, plus one; whichever is smaller. Ties go to the smaller whole
// distance, then to the candidate sharing more of name's words (split at
// sep: "twilio" in PROACTIVE_TWILIO_TOKEN), then to the first. So a
// misspelling ("influx.tokn") and a key in the wrong section ("token" for
// influx.token) both find their key.
func nearest(name string, sep byte, tails []string, cands []candidate) string {
	words := strings.Split(name, string(sep))
	type rank struct{ score, whole, missing int }
	less := func(a, b rank) bool {
		if a.score != b.score {
			return a.score < b.score
		}
		if a.whole != b.whole {
			return a.whole < b.whole
		}
		return a.missing < b.missing
	}
	best, bestRank := "", rank{}
	for i, c := range cands {
		r := rank{whole: proactive.EditDistance(name, c.name)}
		r.score = r.whole
		for _, tail := range tails {
			r.score = min(r.score, proactive.EditDistance(tail, c.last)+1)
		}
		have := strings.Split(c.name, string(sep))
		for _, w := range words {
			if !slices.Contains(have, w) {
				r.missing++
			}
		}
		if i == 0 || less(r, bestRank) {
			best, bestRank = c.suggest, r
		}
	}
	return best
}

// lastPart is what follows the last sep in s.
func lastPart(s string, sep byte) string { return s[strings.LastIndexByte(s, sep)+1:] }
