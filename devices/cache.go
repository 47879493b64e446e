package devices

import (
	"sync"
	"time"
)

// ttlCache is a small map cache whose entries expire after ttl. It holds at
// most max entries: when full it drops the expired ones, and if that frees
// nothing, everything (the next lookups reload what is still in use).
//
// A loader that read the database before a write committed must not store
// what it read after that write invalidated the key: it takes a generation
// with gen before reading and passes it to put, which stores nothing if any
// invalidation happened in between.
type ttlCache[K comparable, V any] struct {
	ttl time.Duration
	max int

	mu  sync.RWMutex
	m   map[K]cacheEntry[V]
	seq uint64 // bumped by every invalidation
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[K comparable, V any](ttl time.Duration, max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{ttl: ttl, max: max, m: make(map[K]cacheEntry[V])}
}

// get returns the live entry for k.
func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// gen returns the invalidation generation, to pass to put.
func (c *ttlCache[K, V]) gen() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq
}

// put stores v for k unless an invalidation happened since gen.
func (c *ttlCache[K, V]) put(k K, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != gen {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = cacheEntry[V]{v: v, expires: now.Add(c.ttl)}
}

// invalidate forgets k and stops loads in flight from storing.
func (c *ttlCache[K, V]) invalidate(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	delete(c.m, k)
}
