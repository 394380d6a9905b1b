package hls

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
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
	mediaDir := t.TempDir()
	media := testmedia.Generate(t, mediaDir, testmedia.Options{Seconds: 8, Width: 320, Height: 180})
	cat, err := catalog.New(mediaDir, transcode.Probe)
	if err != nil {
		t.Fatal(err)
	}
	item := catalog.ItemID(filepath.Base(media))
	storeNow := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	store := session.NewMemoryStore(func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return storeNow })

	// A dead owner: a port nobody listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	const sess, variant = "sessionFallback", "180p"
	if _, _, err := store.Create(context.Background(), abi.JobRecord{ID: sess + ":" + variant, Item: item, Variant: variant,
		Owner: "pod-dead", OwnerURL: deadURL, State: abi.StateActive, LastCompletedSegment: -1}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	storeNow = storeNow.Add(11 * time.Second) // its lease is over
	clockMu.Unlock()

	reg := prometheus.NewRegistry()
	metrics := session.NewMetrics(reg)
	policy := &scriptedPolicy{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := session.NewManager(session.ManagerConfig{Pod: "pod-b", AdvertiseURL: "http://pod-b", TranscodeDir: t.TempDir(),
		Lease: 10 * time.Second, RenewEvery: 3 * time.Second, AheadSegments: 1, MaxJobs: 2, IdleTimeout: time.Minute},
		store, policy, log, metrics)
	e, err := New(Options{Pod: "pod-b", Catalog: cat, Manager: mgr, Rungs: testRungs[1:], SegmentSeconds: 2,
		Preset: "ultrafast", Registry: reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("manager close: %v", err)
		}
	})

	resp, err := srv.Client().Get(srv.URL + "/hls/" + item + "/" + sess + "/" + variant + "/2.ts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 || resp.Header.Get(HeaderPod) != "pod-b" {
		t.Fatalf("segment 2 with a dead owner: %d %s (pod %q); want 200 from pod-b", resp.StatusCode, body, resp.Header.Get(HeaderPod))
	}
	policy.mu.Lock()
	decisions := append([]string(nil), policy.decisions...)
	policy.mu.Unlock()
	if len(decisions) != 2 || decisions[0] != abi.DecideProxy || decisions[1] != abi.DecideTakeover {
		t.Errorf("decisions %v, want [proxy takeover]", decisions)
	}
	rec, err := store.Get(context.Background(), sess+":"+variant)
	if err != nil || rec.Owner != "pod-b" || rec.Epoch != 2 {
		t.Errorf("record: %+v, %v; want pod-b at epoch 2", rec, err)
	}
	if v := value(t, metrics.Takeovers.WithLabelValues("expired")); v != 1 {
		t.Errorf(`wasmhls_takeovers_total{reason="expired"} = %v, want 1`, v)
	}
}
