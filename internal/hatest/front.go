package hatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"time"
)

// HeaderBackend names the pod the front forwarded a request to (the pod
// itself may have proxied it further; HeaderPod says who answered).
const HeaderBackend = "X-Hatest-Backend"

// Front is a round-robin HTTP front over the pods, like a Kubernetes
// Service without session affinity: it sends each request to the next pod
// in rotation, and a pod is in rotation while its /readyz answers 200 (it
// leaves after Options.ProbeFailures failed probes, as endpoints do). Like
// an ingress with retries, a request whose connection is refused (a pod
// that just died, before the probes noticed) goes to the next pod.
type Front struct {
	URL string

	c         *Cluster
	srv       *httptest.Server
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	next     int
	ready    []bool
	failures []int
	served   map[string]int // requests forwarded, by pod
}

func newFront(c *Cluster) *Front {
	f := &Front{
		c:        c,
		done:     make(chan struct{}),
		ready:    make([]bool, len(c.Pods)),
		failures: make([]int, len(c.Pods)),
		served:   map[string]int{},
	}
	for i := range f.ready {
		f.ready[i] = true // Start waited for every /readyz
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.probeLoop(ctx)
	return f
}

func (f *Front) close() {
	f.closeOnce.Do(func() {
		f.cancel()
		<-f.done
		f.srv.Close()
	})
}

// InRotation reports which pods the front sends requests to now.
func (f *Front) InRotation() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for i, ok := range f.ready {
		if ok {
			out = append(out, f.c.Pods[i].Name)
		}
	}
	return out
}

// Served is how many requests the front forwarded to each pod.
func (f *Front) Served() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.served))
	for k, v := range f.served {
		out[k] = v
	}
	return out
}

// WaitRotation waits until the pods in rotation are exactly names (in any
// order), or timeout passes.
func (f *Front) WaitRotation(timeout time.Duration, names ...string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(f.c.opt.ProbeEvery / 2) // polling the prober's state
	defer tick.Stop()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for {
		got := f.InRotation()
		if len(got) == len(want) {
			same := true
			for _, n := range got {
				same = same && want[n]
			}
			if same {
				return nil
			}
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("hatest: front rotation %v, want %v after %s", got, names, timeout)
		case <-tick.C:
		}
	}
}

// probeLoop probes every pod's /readyz each ProbeEvery until ctx ends.
func (f *Front) probeLoop(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(f.c.opt.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for i, p := range f.c.Pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, err := p.get(ctx, "/readyz", f.c.opt.ProbeEvery)
				f.probed(i, err == nil && code == http.StatusOK)
			}()
		}
		wg.Wait()
	}
}

func (f *Front) probed(i int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ok {
		f.failures[i] = 0
		f.ready[i] = true
		return
	}
	f.failures[i]++
	if f.failures[i] >= f.c.opt.ProbeFailures {
		f.ready[i] = false
	}
}

// pick returns the next pod in rotation, skipping tried ones, or nil.
func (f *Front) pick(tried map[int]bool) *Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.c.Pods)
	for k := 0; k < n; k++ {
		i := (f.next + k) % n
		if f.ready[i] && !tried[i] {
			f.next = (i + 1) % n
			f.served[f.c.Pods[i].Name]++
			return f.c.Pods[i]
		}
	}
	return nil
}

func (f *Front) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "front: read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	tried := map[int]bool{}
	for {
		p := f.pick(tried)
		if p == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"front: no ready pod"}`, http.StatusServiceUnavailable)
			return
		}
		tried[p.Index] = true
		req, err := http.NewRequestWithContext(r.Context(), r.Method, p.URL+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, "front: "+err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := f.c.client.Do(req)
		if err != nil {
			if connectFailed(err) {
				continue // the pod is gone; the next one gets the request
			}
			http.Error(w, fmt.Sprintf(`{"error":"front: %s: %v"}`, p.Name, err), http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set(HeaderBackend, p.Name)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
}

// connectFailed: the request never reached a server (safe to retry).
func connectFailed(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// Get does one GET through the front and returns status and body.
func (f *Front) Get(ctx context.Context, path string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := f.c.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("hatest: GET %s through the front: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := readAllLimit(resp.Body, 1<<20)
	return resp.StatusCode, string(b), err
}

func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err == nil && int64(len(b)) > n {
		err = fmt.Errorf("body larger than %d bytes", n)
	}
	return b, err
}
