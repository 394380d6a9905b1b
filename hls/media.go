package hls

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
)

const (
	mpegURL = "application/vnd.apple.mpegurl"
	mp2t    = "video/mp2t"
	// A finished segment never changes (its directory is keyed by every
	// output parameter), so caches may keep it for good.
	segmentCache = "public, max-age=31536000, immutable"
	// Media playlists are complete and fixed, but stay short-lived so a
	// changed ladder or media file shows up soon.
	playlistCache = "public, max-age=10"
)

// itemInfo resolves the :item parameter to its catalog entry and media info,
// answering 400 / 404 / 422 itself (the returned error is then non-nil and
// already written).
func (s *server) itemInfo(c echo.Context) (catalog.Item, *transcode.MediaInfo, error) {
	id := c.Param("item")
	it, err := s.o.Catalog.Lookup(id)
	switch {
	case errors.Is(err, catalog.ErrMalformedID):
		return it, nil, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case errors.Is(err, catalog.ErrUnknownItem):
		return it, nil, echo.NewHTTPError(http.StatusNotFound, err.Error())
	case err != nil:
		return it, nil, err
	}
	info, err := s.o.Catalog.Info(c.Request().Context(), it)
	if err != nil {
		// A broken file only breaks its own URLs.
		return it, nil, echo.NewHTTPError(http.StatusUnprocessableEntity, fmt.Sprintf("item %s: %v", id, err))
	}
	return it, info, nil
}

func (s *server) variants(id string, info *transcode.MediaInfo) ([]transcode.Variant, error) {
	vs := transcode.Ladder(info, s.o.Rungs, s.o.SegmentSeconds, s.o.Preset)
	if len(vs) == 0 {
		return nil, echo.NewHTTPError(http.StatusUnprocessableEntity, fmt.Sprintf("item %s has no video stream to stream", id))
	}
	return vs, nil
}

// variant resolves :session and :variant.
func (s *server) variant(c echo.Context, id string, info *transcode.MediaInfo) (string, transcode.Variant, error) {
	sess, name := c.Param("session"), c.Param("variant")
	if !sessionRe.MatchString(sess) {
		return "", transcode.Variant{}, echo.NewHTTPError(http.StatusBadRequest,
			fmt.Sprintf("malformed session id %q (want 8-64 of A-Z a-z 0-9 _ -)", sess))
	}
	if !variantRe.MatchString(name) {
		return "", transcode.Variant{}, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed variant name %q", name))
	}
	vs, err := s.variants(id, info)
	if err != nil {
		return "", transcode.Variant{}, err
	}
	for _, v := range vs {
		if v.Name == name {
			return sess, v, nil
		}
	}
	return "", transcode.Variant{}, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("item %s has no variant %q", id, name))
}

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// master serves the master playlist; it starts a play session (a new id)
// or joins ?session=ID.
func (s *server) master(c echo.Context) error {
	it, info, err := s.itemInfo(c)
	if err != nil {
		return err
	}
	vs, err := s.variants(it.ID, info)
	if err != nil {
		return err
	}
	sess := c.QueryParam("session")
	if sess == "" {
		if sess, err = newSessionID(); err != nil {
			return err
		}
	} else if !sessionRe.MatchString(sess) {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed session id %q (want 8-64 of A-Z a-z 0-9 _ -)", sess))
	}
	// Each response names its own session: never share it through a cache.
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.Blob(http.StatusOK, mpegURL, []byte(masterPlaylist(sess, vs)))
}

func (s *server) media(c echo.Context) error {
	it, info, err := s.itemInfo(c)
	if err != nil {
		return err
	}
	if _, v, err := s.variant(c, it.ID, info); err != nil {
		return err
	} else {
		c.Response().Header().Set(echo.HeaderCacheControl, playlistCache)
		return c.Blob(http.StatusOK, mpegURL, []byte(mediaPlaylist(transcode.SegmentDurations(info, v.SegmentSeconds))))
	}
}

func (s *server) segment(c echo.Context) error {
	seg := c.Param("segment")
	m := segmentRe.FindStringSubmatch(seg)
	if m == nil {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed segment %q (want N.ts, N a segment number)", seg))
	}
	n, _ := strconv.Atoi(m[1])
	it, info, err := s.itemInfo(c)
	if err != nil {
		return err
	}
	sess, v, err := s.variant(c, it.ID, info)
	if err != nil {
		return err
	}
	req := c.Request()
	sr := session.SegmentRequest{
		Item: it.ID, ItemPath: it.Abs, Info: info, Session: sess, Variant: v, N: n,
		Proxied: req.Header.Get(HeaderProxied) != "",
	}
	// A proxy to an owner that turns out dead (or draining) is decided
	// again by the manager, which then waits for the lease and takes over:
	// the client never sees that error while a takeover is possible.
	for attempt := 0; ; attempt++ {
		res, err := s.o.Manager.Segment(req.Context(), sr)
		switch {
		case errors.Is(err, session.ErrSegmentRange):
			return echo.NewHTTPError(http.StatusNotFound, err.Error())
		case errors.Is(err, session.ErrUnavailable):
			secs := int(s.o.Manager.RetryAfter().Round(time.Second) / time.Second)
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
			return nil // the client went away
		case err != nil:
			return err
		}
		if res.ProxyTo == "" {
			return serveSegment(c, res.Path)
		}
		err = s.proxySegment(c, res.ProxyTo)
		if !errors.Is(err, errOwnerUnreachable) || attempt >= 2 || req.Context().Err() != nil {
			return err
		}
		s.log.Info("owner unreachable through proxy; deciding again", "owner_url", res.ProxyTo, "path", req.URL.Path, "err", err)
		c.Response().Header().Del("Retry-After")
		sr.ProxyFailed = res.ProxyTo
	}
}

// errOwnerUnreachable marks a proxy attempt that reached no answer from
// the owner (or a 503 from it) and wrote nothing to the client yet.
var errOwnerUnreachable = errors.New("owner unreachable")

// serveSegment sends a finished segment with Range support; the body goes
// out through sendfile (see sendfileWriter).
func serveSegment(c echo.Context, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment: %w", err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, mp2t)
	h.Set(echo.HeaderCacheControl, segmentCache)
	http.ServeContent(sendfileWriter{c.Response()}, c.Request(), path.Base(p), st.ModTime(), f)
	return nil
}

// sendfileWriter gives Echo's response writer an io.ReaderFrom, so that
// http.ServeContent's copy of an *os.File reaches net/http's sendfile path
// while Echo still records the status and size.
type sendfileWriter struct{ *echo.Response }

func (w sendfileWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.Committed {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.Writer.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		w.Size += n
		return n, err
	}
	return io.Copy(struct{ io.Writer }{w.Response}, r)
}

// proxySegment fetches the segment from the pod that owns the job.
func (s *server) proxySegment(c echo.Context, ownerURL string) error {
	req := c.Request()
	if req.Header.Get(HeaderProxied) != "" {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "refusing to proxy a proxied request again (loop guard)")
	}
	target := strings.TrimRight(ownerURL, "/") + req.URL.EscapedPath()
	out, err := http.NewRequestWithContext(req.Context(), http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("proxy to %s: %w", ownerURL, err)
	}
	out.Header.Set(HeaderProxied, s.o.Pod)
	if r := req.Header.Get("Range"); r != "" {
		out.Header.Set("Range", r)
	}
	resp, err := s.proxy.Do(out)
	if err != nil {
		c.Response().Header().Set("Retry-After", "1")
		return echo.NewHTTPError(http.StatusServiceUnavailable, fmt.Sprintf("owner %s unreachable: %v", ownerURL, err)).SetInternal(errOwnerUnreachable)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		// The owner cannot produce it (draining, fenced): nothing written yet.
		c.Response().Header().Set("Retry-After", "1")
		return echo.NewHTTPError(http.StatusServiceUnavailable, fmt.Sprintf("owner %s answered 503", ownerURL)).SetInternal(errOwnerUnreachable)
	}
	h := c.Response().Header()
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Range", "Cache-Control", "Accept-Ranges", "Last-Modified", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set("X-Wasmhls-Served-By", resp.Header.Get(HeaderPod))
	c.Response().WriteHeader(resp.StatusCode)
	_, err = io.Copy(c.Response(), resp.Body)
	return err
}
