package hls

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// proxySegment is what a non-owner does when the session layer answers
// ProxyTo: fetch from the owner with a loop-guard header, never twice.
func TestProxySegmentToOwner(t *testing.T) {
	var sawGuard, sawRange string
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawGuard, sawRange = r.Header.Get(HeaderProxied), r.Header.Get("Range")
		if r.URL.Path != "/hls/item-0123456789ab/sessionAA/360p/3.ts" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/mp2t")
		w.Header().Set("Cache-Control", segmentCache)
		w.Header().Set(HeaderPod, "pod-owner")
		w.Write([]byte("segment bytes"))
	}))
	defer owner.Close()
	s := &server{o: Options{Pod: "pod-here"}, proxy: &http.Client{Timeout: 5 * time.Second}}
	e := echo.New()

	req := httptest.NewRequest(http.MethodGet, "/hls/item-0123456789ab/sessionAA/360p/3.ts", nil)
	req.Header.Set("Range", "bytes=0-3")
	rec := httptest.NewRecorder()
	if err := s.proxySegment(e.NewContext(req, rec), owner.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Body.String() != "segment bytes" || rec.Header().Get("Content-Type") != "video/mp2t" ||
		rec.Header().Get("Cache-Control") != segmentCache || rec.Header().Get("X-Wasmhls-Served-By") != "pod-owner" {
		t.Errorf("proxied response: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if sawGuard != "pod-here" || sawRange != "bytes=0-3" {
		t.Errorf("owner saw %s=%q Range=%q", HeaderProxied, sawGuard, sawRange)
	}

	// A request that was already proxied is never proxied again.
	req = httptest.NewRequest(http.MethodGet, "/hls/item-0123456789ab/sessionAA/360p/3.ts", nil)
	req.Header.Set(HeaderProxied, "pod-other")
	err := s.proxySegment(e.NewContext(req, httptest.NewRecorder()), owner.URL)
	var he *echo.HTTPError
	if !errors.As(err, &he) || he.Code != http.StatusServiceUnavailable {
		t.Errorf("proxying a proxied request: %v, want 503", err)
	}

	// An unreachable owner is a 503 with Retry-After, not a hang.
	owner.Close()
	req = httptest.NewRequest(http.MethodGet, "/hls/item-0123456789ab/sessionAA/360p/3.ts", nil)
	rec = httptest.NewRecorder()
	err = s.proxySegment(e.NewContext(req, rec), owner.URL)
	if !errors.As(err, &he) || he.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("unreachable owner: %v, Retry-After %q", err, rec.Header().Get("Retry-After"))
	}
}
