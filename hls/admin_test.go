package hls

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// pluginAdmin is a test double of the plugin host's admin side: it records
// reloads so the test can see whether an unauthorised request got through.
type pluginAdmin struct {
	reloads int
	fail    bool
}

func (p *pluginAdmin) Plugins(context.Context) any { return map[string]string{"store": "store-null"} }
func (p *pluginAdmin) Reload(context.Context) (any, error) {
	p.reloads++
	if p.fail {
		return map[string]string{"store": "kept generation 1"}, errors.New("abi version 2, want 1")
	}
	return map[string]int{"generation": p.reloads + 1}, nil
}

func TestAdminRoutesNeedTheToken(t *testing.T) {
	pa := &pluginAdmin{}
	e := newEnv(t, envOptions{adminToken: "s3cret", plugins: pa})
	vp := e.variantPath()
	e.mustGet(vp + "0.ts")
	sess := strings.Split(strings.Trim(vp, "/"), "/")[2]
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
		{"Authorization": "Bearer s3cret2"}, {"Authorization": "Basic czNjcmV0"}} {
		for _, rq := range []struct{ method, path string }{
			{http.MethodPost, "/api/v1/plugins/reload"},
			{http.MethodDelete, "/api/v1/sessions/" + sess},
		} {
			r := e.do(rq.method, rq.path, hdr)
			if r.code != http.StatusUnauthorized {
				t.Errorf("%s %s with %v: %d, want 401", rq.method, rq.path, hdr, r.code)
				continue
			}
			jsonErr(t, r)
		}
	}
	if pa.reloads != 0 {
		t.Fatalf("unauthorised requests reloaded plugins %d times", pa.reloads)
	}
	var v struct{ Jobs []struct{ Session string } }
	json.Unmarshal(e.mustGet("/api/v1/sessions").body, &v)
	if len(v.Jobs) != 1 || v.Jobs[0].Session != sess {
		t.Fatalf("unauthorised DELETE changed the sessions: %+v", v)
	}

	ok := map[string]string{"Authorization": "Bearer s3cret"}
	if r := e.do(http.MethodPost, "/api/v1/plugins/reload", ok); r.code != http.StatusOK || pa.reloads != 1 {
		t.Errorf("reload with the token: %d %s", r.code, r.body)
	}
	pa.fail = true
	if r := e.do(http.MethodPost, "/api/v1/plugins/reload", ok); r.code != http.StatusUnprocessableEntity ||
		!strings.Contains(jsonErr(t, r), "abi version 2") {
		t.Errorf("failed reload: %d %s, want 422 naming the reason", r.code, r.body)
	}
	r := e.do(http.MethodDelete, "/api/v1/sessions/"+sess, ok)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"stopped_jobs":1`) {
		t.Fatalf("DELETE session with the token: %d %s", r.code, r.body)
	}
	json.Unmarshal(e.mustGet("/api/v1/sessions").body, &v)
	if len(v.Jobs) != 0 {
		t.Errorf("jobs after DELETE: %+v", v.Jobs)
	}
	if r := e.do(http.MethodDelete, "/api/v1/sessions/x", ok); r.code != http.StatusBadRequest {
		t.Errorf("DELETE of a malformed session id: %d", r.code)
	}
	if r := e.get("/api/v1/plugins"); r.code != http.StatusOK || !strings.Contains(string(r.body), "store-null") {
		t.Errorf("GET /api/v1/plugins: %d %s", r.code, r.body)
	}
}

func TestAdminWithoutTokenIsLoopbackOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	// No plugin host: the route exists but says so.
	r := e.do(http.MethodPost, "/api/v1/plugins/reload", nil) // from 127.0.0.1
	if r.code != http.StatusNotFound || jsonErr(t, r) != "no plugin host" {
		t.Errorf("loopback reload without a host: %d %s, want 404 no plugin host", r.code, r.body)
	}
	if r := e.get("/api/v1/plugins"); r.code != http.StatusNotFound {
		t.Errorf("GET plugins without a host: %d", r.code)
	}
	if r := e.get("/api/v1/hwaccel"); r.code != http.StatusNotFound || jsonErr(t, r) == "" {
		t.Errorf("GET hwaccel without a report: %d", r.code)
	}
	for _, addr := range []string{"192.0.2.7:40000", "[2001:db8::1]:40000", "10.0.0.1:1"} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/plugins/reload", nil)
		req.RemoteAddr = addr
		req.Header.Set("X-Forwarded-For", "127.0.0.1") // must not count
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "loopback") {
			t.Errorf("reload from %s: %d %s, want 401", addr, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest(http.MethodDelete, "/api/v1/sessions/abcdefgh", nil)
	req.RemoteAddr = "[::1]:5000"
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("DELETE from ::1 without a token: %d %s", w.Code, w.Body)
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	if r := e.get("/healthz"); r.code != http.StatusOK {
		t.Errorf("/healthz %d", r.code)
	}
	if r := e.get("/readyz"); r.code != http.StatusOK {
		t.Errorf("/readyz %d %s", r.code, r.body)
	}
	e.mustGet(e.variantPath() + "0.ts")
	m := string(e.mustGet("/metrics").body)
	for _, want := range []string{
		`wasmhls_http_requests_total{code="200",route="/hls/:item/:session/:variant/:segment"} 1`,
		"wasmhls_segments_total", "wasmhls_jobs_started_total 1", `wasmhls_jobs{state="paused"}`,
		`wasmhls_segment_latency_seconds_count{result="produced"} 1`, "wasmhls_frames_encoded_total",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.mgr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.get("/readyz")
	if r.code != http.StatusServiceUnavailable || !strings.Contains(jsonErr(t, r), "shutting down") {
		t.Errorf("/readyz after Close: %d %s, want 503 with the reason", r.code, r.body)
	}
	if r := e.get("/healthz"); r.code != http.StatusOK {
		t.Errorf("/healthz after Close: %d", r.code)
	}
	// A closed manager takes no job: 503 with Retry-After.
	r = e.get(e.variantPath() + "3.ts")
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("segment after Close: %d %v", r.code, r.header)
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(http.MethodOptions, "/hls/"+e.item+"/master.m3u8", map[string]string{
		"Origin": "https://player.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
	if r.code != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", r.code, r.header)
	}
}
