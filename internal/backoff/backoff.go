// Package backoff computes the waits between retries of something that keeps failing:
// Min after the first failure, doubled after each further one, never more than Max.
package backoff

import "time"

// Policy bounds the waits. Min must be positive; a Max below Min counts as Min.
type Policy struct {
	Min, Max time.Duration
}

// Delay is the wait after n failures in a row: 0 for n <= 0, Min for n == 1, then doubled
// per failure up to Max.
func (p Policy) Delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	limit := max(p.Max, p.Min)
	d := p.Min
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 {
			return limit // doubling would pass the cap (or overflow)
		}
		d *= 2
	}
	return min(d, limit)
}

// Backoff counts failures in a row under a Policy. The zero value of the counter is "no
// failure"; it is not safe for concurrent use.
type Backoff struct {
	Policy
	failures int
}

// New returns a Backoff with the given bounds.
func New(min, max time.Duration) *Backoff { return &Backoff{Policy: Policy{Min: min, Max: max}} }

// Fail records a failure and returns how long to wait before the next try.
func (b *Backoff) Fail() time.Duration {
	if b.Delay(b.failures) < max(b.Max, b.Min) {
		b.failures++ // past the cap the count stops: the wait stays Max
	}
	return b.Delay(b.failures)
}

// Reset records a success: the next failure waits Min again.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures is the number of failures in a row recorded so far (it stops growing once the
// wait reached Max).
func (b *Backoff) Failures() int { return b.failures }
