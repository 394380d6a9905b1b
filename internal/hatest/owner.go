package hatest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Owners returns the running, not stopped pods that run at least one job
// now (wasmhls_jobs summed over its states > 0). Metrics are the contract
// here, so the harness does not depend on the sessions API's shape.
func (c *Cluster) Owners(ctx context.Context) ([]*Pod, error) {
	var out []*Pod
	for _, p := range c.Pods {
		if !p.Running() || p.Stopped() {
			continue
		}
		n, err := p.Metric(ctx, "wasmhls_jobs", nil)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// WaitOwner polls until exactly one pod runs jobs and returns it.
func (c *Cluster) WaitOwner(ctx context.Context, timeout time.Duration) (*Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // polling the pods' metrics
	defer tick.Stop()
	var last []string
	for {
		owners, err := c.Owners(ctx)
		if err == nil && len(owners) == 1 {
			return owners[0], nil
		}
		last = last[:0]
		for _, p := range owners {
			last = append(last, p.Name)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("hatest: want one pod running jobs, have %v after %s (last error %v)", last, timeout, err)
		case <-tick.C:
		}
	}
}

// SegmentFiles lists the published segment numbers (n.ts) under every
// transcode_dir/{item}/{hash} directory of item, by directory.
func (c *Cluster) SegmentFiles(item string) (map[string][]int, error) {
	dirs, err := filepath.Glob(filepath.Join(c.TranscodeDir, item, "*"))
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("hatest: %w", err)
		}
		var ns []int
		for _, e := range entries {
			if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".ts")); err == nil && strings.HasSuffix(e.Name(), ".ts") {
				ns = append(ns, n)
			}
		}
		sort.Ints(ns)
		out[filepath.Base(d)] = ns
	}
	return out, nil
}

// Fetched is one successful GET made by FetchRetry.
type Fetched struct {
	Body     []byte
	Pod      string // X-Wasmhls-Pod
	Backend  string // X-Hatest-Backend (through the front)
	Arrived  time.Time
	Attempts []string // the failed attempts before it
}

// FetchRetry GETs u as the player does: each attempt bounded by
// requestTimeout, errors and 5xx retried after Retry-After (at most 1 s)
// until total passes; 400 and 404 are final.
func (c *Cluster) FetchRetry(ctx context.Context, u string, requestTimeout, total time.Duration) (Fetched, error) {
	f, fails, err := c.fetch(ctx, u, PlayOptions{RequestTimeout: requestTimeout, SegmentTimeout: total})
	if err != nil {
		return Fetched{Attempts: fails}, err
	}
	return Fetched{Body: f.body, Pod: f.header.Get(HeaderPod), Backend: f.header.Get(HeaderBackend), Arrived: f.at, Attempts: fails}, nil
}
