package hatest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// smallMedia: the front test transcodes nothing; the catalogue needs a file.
var smallMedia = testmedia.Options{Seconds: 2}

// The front behaves like a Service: a killed pod gets no request (its
// refused connections are retried on the next pod at once), a stopped pod
// leaves the rotation once its probes fail, and a pod that is back is used
// again.
func TestFrontSkipsDeadAndStoppedPods(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wasmhls processes")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("cmd/wasmhls does not build yet, so there is no server to run:\n%v", err)
	}
	c := Start(t, Options{Pods: 2, Media: smallMedia})
	ctx := context.Background()
	p0, p1 := c.Pods[0], c.Pods[1]

	servedBy := func(n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			rs := c.get(t, "/healthz")
			got[rs.Header.Get(HeaderPod)]++
		}
		return got
	}
	if got := servedBy(4); got[p0.Name] != 2 || got[p1.Name] != 2 {
		t.Fatalf("round robin over two pods: %v", got)
	}

	// SIGKILL: every request succeeds on the survivor, before and after the
	// probes notice.
	if err := p0.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := servedBy(4); got[p1.Name] != 4 {
		t.Fatalf("after killing %s: %v", p0.Name, got)
	}
	if err := c.Front.WaitRotation(30*time.Second, p1.Name); err != nil {
		t.Fatal(err)
	}
	if err := p0.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Front.WaitRotation(30*time.Second, p0.Name, p1.Name); err != nil {
		t.Fatal(err)
	}

	// SIGSTOP: out of rotation once the probes fail; SIGCONT: back.
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Front.WaitRotation(30*time.Second, p0.Name); err != nil {
		t.Fatal(err)
	}
	if got := servedBy(3); got[p0.Name] != 3 {
		t.Fatalf("with %s stopped: %v", p1.Name, got)
	}
	if err := p1.Cont(); err != nil {
		t.Fatal(err)
	}
	if err := c.Front.WaitRotation(30*time.Second, p0.Name, p1.Name); err != nil {
		t.Fatal(err)
	}

	// SIGTERM: the pod drains and exits 0.
	if err := p1.Term(); err != nil {
		t.Fatal(err)
	}
	if err := p1.WaitExit(30 * time.Second); err != nil {
		t.Fatalf("%s after SIGTERM: %v\n%s", p1.Name, err, p1.LogTail(20))
	}
	if got := servedBy(2); got[p0.Name] != 2 {
		t.Fatalf("after %s drained: %v", p1.Name, got)
	}
}

// get is a GET through the front that must answer 200.
func (c *Cluster) get(t *testing.T, path string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s through the front: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through the front: %d", path, resp.StatusCode)
	}
	return resp
}
