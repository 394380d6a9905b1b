// Package browser plays a wasmhls stream with hls.js in headless Chromium
// (play.mjs, driven by playwright-core) against a real in-process server.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/hls"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
)

const chromium = "/usr/bin/chromium"

// playResult is the JSON line play.mjs prints.
type playResult struct {
	OK              bool     `json:"ok"`
	CodecsSupported bool     `json:"codecsSupported"`
	PlayedS         float64  `json:"played_s"`
	DurationS       float64  `json:"duration_s"`
	Ended           bool     `json:"ended"`
	Fatal           *string  `json:"fatal"`
	Errors          []string `json:"errors"`
	Fragments       int      `json:"fragments"`
}

func TestHLSJSPlaysInChromium(t *testing.T) {
	if _, err := os.Stat("node_modules/hls.js"); err != nil {
		t.Skip("test/browser/node_modules is missing: run `npm ci` in test/browser (make test does)")
	}
	if _, err := os.Stat(chromium); err != nil && os.Getenv("CHROMIUM") == "" {
		t.Skip(chromium + " is missing (install chromium, or set CHROMIUM)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}

	mediaDir := t.TempDir()
	media := testmedia.Generate(t, mediaDir, testmedia.Options{Seconds: 10, Width: 640, Height: 360})
	cat, err := catalog.New(mediaDir, transcode.Probe)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	mgr := session.NewManager(session.ManagerConfig{Pod: "browser-pod", TranscodeDir: t.TempDir(),
		Lease: 30 * time.Second, RenewEvery: 10 * time.Second, AheadSegments: 5, MaxJobs: 4, IdleTimeout: time.Minute},
		session.NewMemoryStore(nil), nil, log, session.NewMetrics(reg))
	e, err := hls.New(hls.Options{Pod: "browser-pod", Catalog: cat, Manager: mgr, SegmentSeconds: 2, Preset: "veryfast",
		Rungs: []transcode.Rung{
			{Name: "360p", Height: 360, VideoBitrate: 800_000, AudioBitrate: 96_000},
			{Name: "180p", Height: 180, VideoBitrate: 300_000, AudioBitrate: 64_000},
		}, Registry: reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mgr.Close(ctx)
	}()

	url := srv.URL + "/hls/" + catalog.ItemID(filepath.Base(media)) + "/master.m3u8"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, "play.mjs", url, "9")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exit 1 means "not ok": the JSON says why
	var res playResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("play.mjs printed no result (%v): %v\nstdout: %s\nstderr: %s", runErr, err, stdout.String(), stderr.String())
	}
	t.Logf("hls.js: %+v", res)
	if !res.CodecsSupported {
		t.Fatal("this Chromium has no MSE/H.264 support (hls.js isSupported() = false)")
	}
	if !res.OK || res.Fatal != nil {
		t.Fatalf("hls.js did not play: %+v (errors %v)", res, res.Errors)
	}
	if !res.Ended || res.PlayedS < 9.5 || res.DurationS < 9.5 || res.DurationS > 10.5 {
		t.Errorf("played %.2f of %.2f s, ended %v; want the whole 10 s", res.PlayedS, res.DurationS, res.Ended)
	}
	if res.Fragments < 5 {
		t.Errorf("%d fragments buffered, want at least the 5 segments", res.Fragments)
	}
}
