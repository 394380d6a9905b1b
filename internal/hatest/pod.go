package hatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// HeaderPod is the response header naming the pod that answered.
const HeaderPod = "X-Wasmhls-Pod"

// Pod is one `wasmhls serve` process. Its port, name and environment stay
// the same across restarts.
type Pod struct {
	Index int
	Name  string // POD_NAME
	Addr  string // 127.0.0.1:port
	URL   string // http://127.0.0.1:port

	c       *Cluster
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has been waited for
	exitErr error
	stopped bool // SIGSTOPped and not yet continued
}

// start launches the process and waits until /readyz answers 200, the
// process exits, or ReadyTimeout passes.
func (p *Pod) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("hatest: pod %s log: %w", p.Name, err)
	}
	fmt.Fprintf(logf, "---- hatest: start %s at %s\n", p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.c.opt.Binary, "serve", "--config", "")
	cmd.Env = p.env
	cmd.Dir = p.c.workDir
	cmd.Stdout, cmd.Stderr = logf, logf // files: no copying goroutine to own
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("hatest: start pod %s: %w", p.Name, err)
	}
	logf.Close() // the child has its own descriptor
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.exitErr, p.stopped = cmd, exited, nil, false
	p.mu.Unlock()
	// The waiter ends when the process exits; Cluster cleanup kills every
	// process, so it never outlives the test.
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return p.waitReady(ctx, exited)
}

func (p *Pod) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, p.c.opt.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // polling an external condition: the server's /readyz
	defer tick.Stop()
	var last string
	for {
		code, body, err := p.get(ctx, "/readyz", time.Second)
		switch {
		case err == nil && code == http.StatusOK:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("%d %s", code, body)
		}
		select {
		case <-exited:
			return fmt.Errorf("hatest: pod %s exited before it was ready (%v); log:\n%s", p.Name, p.ExitErr(), p.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("hatest: pod %s not ready after %s (last /readyz: %s); log:\n%s", p.Name, p.c.opt.ReadyTimeout, last, p.LogTail(40))
		case <-tick.C:
		}
	}
}

// Restart starts the pod again after it exited (Kill, Term) and waits for
// /readyz.
func (p *Pod) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("hatest: restart pod %s: still running", p.Name)
	}
	return p.start(ctx)
}

// Running reports whether the process has not exited (it may be stopped).
func (p *Pod) Running() bool {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// ExitErr is the last process's exit status (nil while running or on exit 0).
func (p *Pod) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

func (p *Pod) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || !p.Running() {
		return fmt.Errorf("hatest: pod %s is not running", p.Name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("hatest: signal %v to pod %s: %w", sig, p.Name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Pod) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.mu.Lock()
	ch := p.exited
	p.stopped = false
	p.mu.Unlock()
	<-ch
	return nil
}

// Term sends SIGTERM (the graceful drain) and returns at once; WaitExit
// waits for the process to finish draining.
func (p *Pod) Term() error { return p.signal(syscall.SIGTERM) }

// WaitExit waits until the process has exited or timeout passes; it returns
// the exit status (nil for exit 0).
func (p *Pod) WaitExit(timeout time.Duration) error {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return fmt.Errorf("hatest: pod %s was never started", p.Name)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return p.ExitErr()
	case <-t.C:
		return fmt.Errorf("hatest: pod %s still running %s after the wait began", p.Name, timeout)
	}
}

// Stop freezes the process (SIGSTOP): it keeps its sockets and its leases in
// its own view, and answers nothing.
func (p *Pod) Stop() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	return nil
}

// Cont resumes a stopped process (SIGCONT).
func (p *Pod) Cont() error {
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	p.mu.Lock()
	p.stopped = false
	p.mu.Unlock()
	return nil
}

// Stopped reports whether the pod is SIGSTOPped.
func (p *Pod) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// kill ends the process whatever its state (cleanup).
func (p *Pod) kill() {
	if !p.Running() {
		return
	}
	_ = p.signal(syscall.SIGCONT) // harmless when running; leaves no pod frozen
	_ = p.Kill()
}

// get does one GET on this pod directly (not through the front).
func (p *Pod) get(ctx context.Context, path string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := p.c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// Get does one GET on this pod directly and returns status and body.
func (p *Pod) Get(ctx context.Context, path string, timeout time.Duration) (int, string, error) {
	code, body, err := p.get(ctx, path, timeout)
	if err != nil {
		return 0, "", fmt.Errorf("hatest: GET %s on pod %s: %w", path, p.Name, err)
	}
	return code, body, nil
}

// Metric sums the samples of metric name on this pod whose labels include
// every pair of labels (nil: all samples), from GET /metrics.
func (p *Pod) Metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	code, body, err := p.Get(ctx, "/metrics", 5*time.Second)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("hatest: GET /metrics on pod %s: status %d", p.Name, code)
	}
	return sumMetric(body, name, labels)
}

// sumMetric reads Prometheus text format: `name{a="b",...} value [ts]`.
func sumMetric(text, name string, labels map[string]string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		got := parseLabels(strings.TrimSuffix(lbls, "}"))
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return 0, fmt.Errorf("hatest: metric line %q: %w", line, err)
		}
		sum += f
	}
	return sum, sc.Err()
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		// Values escape \" \\ \n; find the closing quote.
		var v strings.Builder
		i := 0
		for ; i < len(rest); i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				v.WriteByte(rest[i])
				continue
			}
			if rest[i] == '"' {
				break
			}
			v.WriteByte(rest[i])
		}
		out[strings.TrimPrefix(k, ",")] = v.String()
		if i+1 >= len(rest) {
			break
		}
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
	return out
}

// Log is everything the pod wrote to stdout and stderr, across restarts.
func (p *Pod) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return string(b)
}

// LogTail is the last n lines of Log.
func (p *Pod) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
