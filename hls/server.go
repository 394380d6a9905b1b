// Package hls is wasmhls' HTTP surface (Echo): playlists, segments, the
// JSON API, admin routes, health and metrics — the "HTTP contract" of
// DESIGN.md. It decides nothing about who produces a segment: that is the
// session manager's job.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
)

// PluginAdmin is what the plugin host offers the admin API.
type PluginAdmin interface {
	Plugins(ctx context.Context) any
	Reload(ctx context.Context) (any, error)
}

// Options configures the server.
type Options struct {
	Pod            string
	Catalog        *catalog.Catalog
	Manager        *session.Manager
	Rungs          []transcode.Rung
	SegmentSeconds int
	Preset         string
	// AdminToken guards admin routes as a bearer token; empty: loopback clients only.
	AdminToken string
	// Plugins serves /api/v1/plugins; nil answers 404 "no plugin host".
	Plugins PluginAdmin
	// HWAccel reports detected devices and the chosen pipeline for
	// GET /api/v1/hwaccel; nil answers 404.
	HWAccel func(ctx context.Context) any
	// ReadyChecks are asked by /readyz after the manager (e.g. the plugin host).
	ReadyChecks []func() error
	// Registry: /metrics serves it and the HTTP metrics register on it.
	Registry *prometheus.Registry
	Log      *slog.Logger
	// ProxyTimeout bounds a request proxied to the owning pod; 0: 15 s.
	ProxyTimeout time.Duration
}

// Header names.
const (
	HeaderPod = "X-Wasmhls-Pod"
	// HeaderProxied marks a request proxied by another pod (loop guard): the
	// receiver never proxies it again.
	HeaderProxied = "X-Wasmhls-Proxied"
)

// Strict shapes of path parts; anything else is a 400 before any lookup.
var (
	sessionRe = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	variantRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	segmentRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,6})\.ts$`)
)

type server struct {
	o       Options
	log     *slog.Logger
	proxy   *http.Client
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// New builds the Echo server with every route.
func New(o Options) (*echo.Echo, error) {
	if o.Catalog == nil || o.Manager == nil || o.Registry == nil {
		return nil, errors.New("hls: Catalog, Manager and Registry are required")
	}
	if o.SegmentSeconds < 1 || len(o.Rungs) == 0 {
		return nil, fmt.Errorf("hls: need segment seconds ≥ 1 (got %d) and at least one ladder rung", o.SegmentSeconds)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ProxyTimeout <= 0 {
		o.ProxyTimeout = 15 * time.Second
	}
	s := &server{
		o: o, log: o.Log,
		proxy: &http.Client{Timeout: o.ProxyTimeout,
			// A proxied request goes to exactly one owner, never onwards.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmhls_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wasmhls_http_request_seconds",
			Help: "HTTP request duration by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"}),
	}
	if err := o.Registry.Register(s.reqs); err != nil {
		return nil, fmt.Errorf("hls: register metrics: %w", err)
	}
	if err := o.Registry.Register(s.latency); err != nil {
		return nil, fmt.Errorf("hls: register metrics: %w", err)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(HeaderPod, o.Pod)
			return next(c)
		}
	})
	e.Use(s.observe)
	e.Use(cors)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})))
	e.GET("/api/v1/items", s.items)
	e.GET("/api/v1/sessions", s.sessions)
	e.DELETE("/api/v1/sessions/:session", s.stopSession, s.admin)
	e.GET("/api/v1/plugins", s.plugins)
	e.POST("/api/v1/plugins/reload", s.reloadPlugins, s.admin)
	e.GET("/api/v1/hwaccel", s.hwaccel)
	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/hls/:item/master.m3u8", s.master, noTraversal)
	e.Match(getHead, "/hls/:item/:session/:variant/index.m3u8", s.media, noTraversal)
	e.Match(getHead, "/hls/:item/:session/:variant/:segment", s.segment, noTraversal)
	e.Any("/hls/*", s.badHLSPath)
	e.RouteNotFound("/*", func(c echo.Context) error {
		return jsonError(c, http.StatusNotFound, "no such route: "+c.Request().URL.Path)
	})
	return e, nil
}

// apiError is the JSON body of every error.
type apiError struct {
	Error string `json:"error"`
}

func jsonError(c echo.Context, code int, msg string) error {
	return c.JSON(code, apiError{Error: msg})
}

// errorHandler turns whatever a handler or Echo returns into {"error": ...}.
func (s *server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
	}
	if code >= 500 {
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = jsonError(c, code, msg)
}

// observe counts requests by route template and status.
func (s *server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		begin := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.reqs.WithLabelValues(route, fmt.Sprint(c.Response().Status)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(begin).Seconds())
		return nil
	}
}

// badHLSPath answers any /hls/ path that matched no route: traversal
// attempts are malformed requests (400), anything else is unknown (404).
func (s *server) badHLSPath(c echo.Context) error {
	raw := c.Request().URL.EscapedPath()
	if p := strings.ToLower(raw); strings.Contains(p, "..") || strings.Contains(p, "%2e%2e") ||
		strings.Contains(p, "%2f") || strings.Contains(p, "%5c") || strings.Contains(p, "\\") {
		return jsonError(c, http.StatusBadRequest, "malformed HLS path (path traversal): "+raw)
	}
	return jsonError(c, http.StatusNotFound, "no such HLS route: "+raw)
}

// noTraversal refuses any path parameter that tries to climb out of its
// directory, before the stricter per-part checks say what is malformed.
func noTraversal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for _, v := range c.ParamValues() {
			if strings.Contains(v, "..") || strings.ContainsAny(v, "/\\\x00") {
				return echo.NewHTTPError(http.StatusBadRequest, "malformed HLS path (path traversal): "+c.Request().URL.EscapedPath())
			}
		}
		return next(c)
	}
}

func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "pod": s.o.Pod})
}

func (s *server) readyz(c echo.Context) error {
	checks := append([]func() error{s.o.Manager.Ready}, s.o.ReadyChecks...)
	var degraded []string
	for _, check := range checks {
		err := check()
		switch {
		case errors.Is(err, session.ErrDegraded):
			// Shared by every pod (the store is down): stay in rotation so
			// finished segments keep being served.
			degraded = append(degraded, err.Error())
		case err != nil:
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error(), "pod": s.o.Pod})
		}
	}
	if len(degraded) > 0 {
		return c.JSON(http.StatusOK, map[string]string{"status": "degraded", "error": strings.Join(degraded, "; "), "pod": s.o.Pod})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready", "pod": s.o.Pod})
}

// cors lets browsers (hls.js on any origin) GET playlists and segments.
// Only GET and HEAD are offered, so admin routes stay out of reach of
// cross-origin pages.
func cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, "+HeaderPod)
		req := c.Request()
		if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Range")
			h.Set("Access-Control-Max-Age", "86400")
			return c.NoContent(http.StatusNoContent)
		}
		return next(c)
	}
}
