package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type nginx struct {
	cmd  *exec.Cmd
	base string
}

// startNginx serves root on a free loopback port with sendfile, in the
// foreground, with every path it writes inside work.
func startNginx(work, root string) (*nginx, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  types { video/mp2t ts; }
  server {
    listen 127.0.0.1:%[2]d;
    root %[3]s;
    add_header Cache-Control "public, max-age=31536000, immutable";
  }
}
`, dir, port, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin := "/usr/sbin/nginx"
	n := &nginx{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	n.cmd = exec.Command(bin, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(n.base + "/0.ts")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	return nil, fmt.Errorf("nginx did not serve %s/0.ts: %s", root, lastLines(string(log), 5))
}

func (n *nginx) stop() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		_ = n.cmd.Wait()
	}
}

func nginxVersion() string {
	out, err := exec.Command("/usr/sbin/nginx", "-v").CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: nginx/"))
}
