package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// The child process of TestServe runs runServe as `wasmhls serve` would.
// Its switch deliberately does not start with WASMHLS_: every WASMHLS_*
// variable is a configuration key.
const childEnv = "WASMHLSTEST_SERVE_CHILD"

func TestServeProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper process for TestServe")
	}
	if err := runServe([]string{"--config", ""}); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveCmd starts the test binary as a server with env on top of a clean
// environment (no WASMHLS_* from the caller).
func serveCmd(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeProcess$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WASMHLS_") && !strings.HasPrefix(kv, "POD_NAME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeStreamsAndStopsOnSIGTERM(t *testing.T) {
	media := t.TempDir()
	testmedia.Generate(t, media, testmedia.Options{Seconds: 4, Width: 320, Height: 180})
	addr := freePort(t)
	cmd, out := serveCmd(t, "WASMHLS_LISTEN="+addr, "WASMHLS_MEDIA_DIR="+media,
		"WASMHLS_TRANSCODE_DIR="+filepath.Join(t.TempDir(), "segments"), "WASMHLS_SEGMENT_SECONDS=2",
		"WASMHLS_POD_NAME=serve-test", "WASMHLS_LOG_FORMAT=text", "WASMHLS_TRANSCODE_PRESET=ultrafast",
		`WASMHLS_LADDER=[{name: low, height: 180, video_bitrate: 300k, audio_bitrate: 64k}]`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	base := "http://" + addr
	// A bound, not a speed check: with an empty compilation cache the child
	// (a -race test binary) compiles the four built-in plugins first, which
	// took 69 s on a busy 2-core machine.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Wasmhls-Pod") == "serve-test" {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("server exited before it was ready: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The whole stream through the ffmpeg CLI; the item id comes from the API.
	var ff bytes.Buffer
	resp, err := http.Get(base + "/api/v1/items")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := between(string(body), `"id":"`, `"`)
	if id == "" {
		t.Fatalf("no item in %s", body)
	}
	client := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", base+"/hls/"+id+"/master.m3u8", "-f", "null", "-")
	client.Stdout, client.Stderr = &ff, &ff
	if err := client.Run(); err != nil || ff.Len() > 0 {
		t.Fatalf("ffmpeg client: %v\n%s", err, ff.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("server did not stop after SIGTERM:\n%s", out)
	}
	if !strings.Contains(out.String(), "shutting down") {
		t.Errorf("no shutdown in the log:\n%s", out)
	}
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"WASMHLS_TRANSCODE_MAX_JOBS=0", "transcode.max_jobs"},
		{"WASMHLS_MEDIA_DIR=/nonexistent/wasmhls-media", "/nonexistent/wasmhls-media"},
		{"WASMHLS_LISTEN=not-an-address", "listen"},
	} {
		cmd, out := serveCmd(t, "WASMHLS_TRANSCODE_DIR="+t.TempDir(), c.env)
		err := cmd.Run()
		if err == nil || !strings.Contains(out.String(), c.want) {
			t.Errorf("%s: exit %v, output %q; want a failure naming %s", c.env, err, out, c.want)
		}
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}
