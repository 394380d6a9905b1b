package hls

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// scriptedPolicy answers proxy to the first decision, then the default
// rule (take over an expired or released job, else proxy).
type scriptedPolicy struct {
	mu        sync.Mutex
	decisions []string
}

func (p *scriptedPolicy) Decide(_ context.Context, req abi.DecideRequest) (abi.DecideResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := abi.DecideProxy
	if len(p.decisions) > 0 && (req.Record.State == abi.StateReleased || req.Record.LeaseExpiresMs <= req.NowMs) {
		d = abi.DecideTakeover
	}
	p.decisions = append(p.decisions, d)
	return abi.DecideResponse{Decision: d}, nil
}

// A proxy to an owner that is gone (connection refused) is not the
// client's error: the request is decided again and, the owner's lease being
// over, taken over and served by this pod.
func TestDeadOwnerProxyFallsBackToTakeover(t *testing.T) {
	storeNow := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	policy := &scriptedPolicy{}
	e := newEnv(t, envOptions{media: testmedia.Options{Seconds: 8, Width: 320, Height: 180}, rungs: testRungs[1:],
		ahead: 1, maxJobs: 2, policy: policy,
		clock: func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return storeNow }})

	// A dead owner: a port nobody listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	const sess, variant = "sessionFallback", "180p"
	if _, _, err := e.store.Create(context.Background(), abi.JobRecord{ID: sess + ":" + variant, Item: e.item, Variant: variant,
		Owner: "pod-dead", OwnerURL: deadURL, State: abi.StateActive, LastCompletedSegment: -1}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	storeNow = storeNow.Add(11 * time.Second) // its lease is over
	clockMu.Unlock()

	resp, err := e.srv.Client().Get(e.srv.URL + "/hls/" + e.item + "/" + sess + "/" + variant + "/2.ts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 || resp.Header.Get(HeaderPod) != testPod {
		t.Fatalf("segment 2 with a dead owner: %d %s (pod %q); want 200 from this pod", resp.StatusCode, body, resp.Header.Get(HeaderPod))
	}
	policy.mu.Lock()
	decisions := append([]string(nil), policy.decisions...)
	policy.mu.Unlock()
	if len(decisions) != 2 || decisions[0] != abi.DecideProxy || decisions[1] != abi.DecideTakeover {
		t.Errorf("decisions %v, want [proxy takeover]", decisions)
	}
	rec, err := e.store.Get(context.Background(), sess+":"+variant)
	if err != nil || rec.Owner != testPod || rec.Epoch != 2 {
		t.Errorf("record: %+v, %v; want %s at epoch 2", rec, err, testPod)
	}
	if v := value(t, e.metrics.Takeovers.WithLabelValues("expired")); v != 1 {
		t.Errorf(`wasmhls_takeovers_total{reason="expired"} = %v, want 1`, v)
	}
}
