package connlimit

import (
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultRatePerIP is how many new connections and requests per second one address that is
// not a balancer may make (a balancer probes a few times a second at most).
const DefaultRatePerIP = 100

// maxBuckets bounds the addresses tracked at once; past it, new addresses share one bucket.
const maxBuckets = 1 << 14

// rate is a token bucket per client address: rate tokens a second, as many at most.
type rate struct {
	perSec float64
	clock  clockwork.Clock

	mu       sync.Mutex
	buckets  map[netip.Addr]*bucket
	overflow bucket
	swept    time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRate(perSec int, clock clockwork.Clock) *rate {
	return &rate{perSec: float64(perSec), clock: clock, buckets: map[netip.Addr]*bucket{}}
}

// allow takes one token of ip's bucket; false when it is empty.
func (r *rate) allow(ip netip.Addr) bool {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[ip]
	if b == nil {
		if len(r.buckets) >= maxBuckets {
			r.sweep(now)
		}
		if len(r.buckets) >= maxBuckets {
			b = &r.overflow
		} else {
			b = &bucket{tokens: r.perSec, last: now}
			r.buckets[ip] = b
		}
	}
	b.tokens = min(r.perSec, b.tokens+now.Sub(b.last).Seconds()*r.perSec)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the buckets that are full again (idle for a second or more), at most once a
// second.
func (r *rate) sweep(now time.Time) {
	if now.Sub(r.swept) < time.Second {
		return
	}
	r.swept = now
	for ip, b := range r.buckets {
		if now.Sub(b.last) >= time.Second {
			delete(r.buckets, ip)
		}
	}
}
