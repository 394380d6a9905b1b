package host

import (
	"context"
	"sync"
)

// pool bounds the instances of one plugin. A token (slot in sem) is held
// for the whole time a caller uses an instance, so at most size instances
// exist; idle ones are reused, broken or worn-out ones are closed and a
// fresh one is made on the next demand.
type pool struct {
	p    *Plugin
	sem  chan struct{}
	mu   sync.Mutex
	idle []*instance
}

func newPool(size int, p *Plugin) *pool {
	return &pool{p: p, sem: make(chan struct{}, size)}
}

// get waits for a token and returns an idle instance or a new one.
func (pl *pool) get(ctx context.Context) (*instance, error) {
	select {
	case pl.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	pl.mu.Lock()
	if n := len(pl.idle); n > 0 {
		in := pl.idle[n-1]
		pl.idle = pl.idle[:n-1]
		pl.mu.Unlock()
		return in, nil
	}
	pl.mu.Unlock()
	in, err := pl.p.newInstance(ctx)
	if err != nil {
		<-pl.sem
		return nil, err
	}
	return in, nil
}

// put returns an instance taken with get (or made at load, which holds no
// token until it is first put: see prime). A broken instance, one past
// recycle_after calls, or any instance of a closed plugin is closed.
func (pl *pool) put(in *instance, broken bool) {
	defer func() { <-pl.sem }()
	if broken || in.calls >= pl.p.limits.RecycleAfter || pl.p.closed.Load() {
		in.close(context.Background())
		pl.p.metrics.instances(pl.p.slot, -1)
		if pl.p.closed.Load() {
			return
		}
		// Replace it now, while this caller still holds the token, so the
		// next caller finds a warm instance; if that fails, get tries again.
		fresh, err := pl.p.newInstance(context.Background())
		if err != nil {
			pl.p.log.Warn("plugin instance could not be replaced", "err", err)
			return
		}
		in = fresh
	}
	pl.mu.Lock()
	pl.idle = append(pl.idle, in)
	pl.mu.Unlock()
}

// discard closes an instance taken with get (or primed) without replacing
// it: the load that made it failed.
func (pl *pool) discard(in *instance) {
	in.close(context.Background())
	pl.p.metrics.instances(pl.p.slot, -1)
	<-pl.sem
}

// prime takes a token for an instance made outside get, so put can
// release it uniformly.
func (pl *pool) prime() { pl.sem <- struct{}{} }

// idleMemory sums the linear memory of idle instances (instances in use
// are not touched: their memory may be growing).
func (pl *pool) idleMemory() (n int, bytes uint64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, in := range pl.idle {
		bytes += uint64(in.mem.Size())
	}
	return len(pl.idle), bytes
}

func (pl *pool) closeIdle(ctx context.Context) {
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, in := range idle {
		in.close(ctx)
		pl.p.metrics.instances(pl.p.slot, -1)
	}
}
