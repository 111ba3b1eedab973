package rng

import (
	"math"
	"time"
)

// bucket is a token bucket of bytes: it fills at rate bytes per second up
// to size, and each byte given to the guest takes one token.
type bucket struct {
	rate, size float64 // 0 rate: unlimited
	tokens     float64
	last       time.Time
}

func newBucket(rate, burst uint64, now time.Time) bucket {
	if rate == 0 {
		return bucket{}
	}
	if burst == 0 {
		burst = rate
	}
	return bucket{rate: float64(rate), size: float64(burst), tokens: float64(burst), last: now}
}

// available refills the bucket up to now and returns the whole tokens in it.
func (b *bucket) available(now time.Time) uint64 {
	if b.rate == 0 {
		return math.MaxUint64
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.size, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	return uint64(b.tokens)
}

// clamp limits a request of n bytes to what the bucket can ever hold.
func (b *bucket) clamp(n uint64) uint64 {
	if b.rate == 0 {
		return n
	}
	return min(n, uint64(b.size))
}

// take removes n tokens.
func (b *bucket) take(n uint64) {
	if b.rate != 0 {
		b.tokens = max(0, b.tokens-float64(n))
	}
}

// waitFor is how long until the bucket holds n tokens (n <= its size).
func (b *bucket) waitFor(n uint64) time.Duration {
	if b.rate == 0 || b.tokens >= float64(n) {
		return 0
	}
	return time.Duration(math.Ceil((float64(n) - b.tokens) / b.rate * float64(time.Second)))
}
