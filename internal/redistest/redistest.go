// Package redistest starts a real redis-server for tests: its own loopback
// port and temp dir, no persistence, killed when the test ends. Tests that
// exercise failure (a Redis that dies mid-operation) use Kill and Restart.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	client *redis.Client
}

// Start launches redis-server on a free loopback port and waits until it
// answers PING. A missing redis-server fails it,
// because these tests are meant to run against real Redis.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found in PATH (install the redis-server package): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	// A port picked by the kernel can be taken by someone else before
	// redis binds it; retry a few times with fresh ports.
	var lastErr error
	for range 5 {
		var err error
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: pick a port: %v", err)
		}
		if lastErr = s.launch(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("redistest: %v", lastErr)
	}
	t.Cleanup(s.stop)
	return s
}

// URL is redis://127.0.0.1:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Client returns a go-redis client for the server, closed at test end.
func (s *Server) Client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{Addr: s.Addr()})
	}
	return s.client
}

// Kill stops the server with SIGKILL and waits for the process to exit.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Restart kills the server if it is running and starts a fresh, empty one
// on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.killLocked()
	s.mu.Unlock()
	// The port was ours a moment ago; redis sets SO_REUSEADDR, so a rebind
	// normally succeeds at once. Retry briefly in case the kernel lags.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.launch()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond) // polling an external condition: the port becoming bindable
	}
}

func (s *Server) launch() error {
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { // owner: this Server; ends when the process exits (Kill/stop)
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(s.Addr(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		return fmt.Errorf("redis-server on %s: %w; log:\n%s", s.Addr(), err, tail(log, 2000))
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
	}
	s.killLocked()
}

// waitReady polls PING until it answers or the process exits.
func waitReady(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited before answering PING")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling an external process until it listens
	}
	return fmt.Errorf("no PING answer within %v: %w", startTimeout, err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
