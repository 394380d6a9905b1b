package hls

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/session"
)

// unreachableStore fails every Get as a store that cannot be reached.
type unreachableStore struct{ *session.MemoryStore }

func (unreachableStore) Get(context.Context, string) (abi.JobRecord, error) {
	return abi.JobRecord{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// A store outage is shared by every pod: /readyz says "degraded" with 200,
// so the pods stay in rotation and keep serving finished segments; a
// draining pod says 503.
func TestReadyzDegradedWhileStoreDown(t *testing.T) {
	e := newEnv(t, envOptions{media: testmedia.Options{Seconds: 2, Width: 320, Height: 180}, rungs: testRungs[1:],
		wrapStore: func(m *session.MemoryStore) session.Store { return unreachableStore{m} }})
	readyz := func() (int, map[string]string) {
		resp, err := e.srv.Client().Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := readyz(); code != http.StatusOK || body["status"] != "degraded" || body["error"] == "" {
		t.Errorf("/readyz with the store down: %d %v; want 200 degraded with the reason", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.mgr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body["status"] != "not ready" {
		t.Errorf("/readyz while draining: %d %v; want 503", code, body)
	}
}
