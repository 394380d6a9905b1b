// Package hatest runs several real `wasmhls serve` processes for multi-pod
// tests: a shared transcode_dir, optionally a real redis-server with the
// store-redis plugin, a round-robin front that skips pods that are not ready
// (as a Kubernetes Service does), and a scripted HLS client that plays in
// real time and records who served each segment and how the segments join.
// Process control (SIGKILL, SIGTERM, SIGSTOP/SIGCONT) is per pod.
package hatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// Binary builds cmd/wasmhls once per test process (go build -o into a temp
// directory) and returns the path. The error carries the compiler output, so
// a test can skip with a message while the server does not build. Call
// RemoveBinary from TestMain to delete it.
func Binary() (string, error) {
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "wasmhls-hatest-")
		if err != nil {
			buildErr = fmt.Errorf("hatest: temp dir for the binary: %w", err)
			return
		}
		out := filepath.Join(binDir, "wasmhls")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/wasmhls")
		cmd.Dir = root
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("hatest: go build ./cmd/wasmhls: %w\n%s", err, strings.TrimSpace(msg.String()))
			return
		}
		binPath = out
	})
	return binPath, buildErr
}

// RemoveBinary deletes the binary Binary built (if any).
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("hatest: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("hatest: not inside the wasmhls module")
	}
	return filepath.Dir(mod), nil
}
