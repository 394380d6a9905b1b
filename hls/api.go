package hls

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// itemJSON is one entry of GET /api/v1/items.
type itemJSON struct {
	ID       string     `json:"id"`
	Path     string     `json:"path"`
	Duration float64    `json:"duration_s"`
	Video    *videoJSON `json:"video,omitempty"`
	Audio    *audioJSON `json:"audio,omitempty"`
	// Error names what is wrong with a file that cannot be streamed.
	Error string `json:"error,omitempty"`
}

type videoJSON struct {
	Codec  string  `json:"codec"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps"`
}

type audioJSON struct {
	Codec      string `json:"codec"`
	Channels   int    `json:"channels"`
	SampleRate int    `json:"sample_rate"`
}

func (s *server) items(c echo.Context) error {
	items, err := s.o.Catalog.List()
	if err != nil {
		return err
	}
	out := make([]itemJSON, 0, len(items))
	for _, it := range items {
		j := itemJSON{ID: it.ID, Path: it.Path}
		info, err := s.o.Catalog.Info(c.Request().Context(), it)
		if err != nil {
			j.Error = err.Error()
		} else {
			j.Duration = info.Duration
			if v := info.Video; v != nil {
				j.Video = &videoJSON{Codec: v.Codec, Width: v.Width, Height: v.Height, FPS: v.FPS}
			}
			if a := info.Audio; a != nil {
				j.Audio = &audioJSON{Codec: a.Codec, Channels: a.Channels, SampleRate: a.SampleRate}
			}
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) sessions(c echo.Context) error {
	v, err := s.o.Manager.Sessions(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *server) stopSession(c echo.Context) error {
	sess := c.Param("session")
	if !sessionRe.MatchString(sess) {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed session id %q", sess))
	}
	n, err := s.o.Manager.StopSession(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"session": sess, "stopped_jobs": n})
}

func (s *server) plugins(c echo.Context) error {
	if s.o.Plugins == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no plugin host")
	}
	return c.JSON(http.StatusOK, s.o.Plugins.Plugins(c.Request().Context()))
}

func (s *server) reloadPlugins(c echo.Context) error {
	if s.o.Plugins == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no plugin host")
	}
	res, err := s.o.Plugins.Reload(c.Request().Context())
	if err != nil {
		// The last good generation keeps serving; say why the new one did not load.
		return c.JSON(http.StatusUnprocessableEntity, map[string]any{"error": "reload failed: " + err.Error(), "result": res})
	}
	return c.JSON(http.StatusOK, res)
}

// admin guards admin routes: with admin.token set, the request needs
// "Authorization: Bearer <token>" (compared in constant time); without one,
// only loopback clients are served. The peer address is the TCP one, never a
// forwarded header a client could forge.
func (s *server) admin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if tok := s.o.AdminToken; tok != "" {
			got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="wasmhls admin"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "admin route: missing or wrong bearer token")
			}
			return next(c)
		}
		host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return echo.NewHTTPError(http.StatusUnauthorized, "admin route: admin.token is not set, so only loopback clients may use it")
		}
		return next(c)
	}
}

func (s *server) hwaccel(c echo.Context) error {
	if s.o.HWAccel == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no hardware acceleration report in this build")
	}
	return c.JSON(http.StatusOK, s.o.HWAccel(c.Request().Context()))
}
