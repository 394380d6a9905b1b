// Package catalog lists the media files under media_dir and gives each a
// stable, URL-safe item id derived from its path relative to media_dir, so
// that every pod (and every restart) names an item the same way. It probes
// files lazily and caches the result per (path, size, mtime).
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/transcode"
)

// Errors Lookup returns; hls maps them to 400 and 404.
var (
	ErrMalformedID = errors.New("malformed item id")
	ErrUnknownItem = errors.New("unknown item")
)

// ProbeFunc reports what a media file holds (transcode.Probe in the server).
type ProbeFunc func(path string) (*transcode.MediaInfo, error)

// Item is one media file under media_dir.
type Item struct {
	ID      string    // stable id (see ItemID)
	Path    string    // relative to media_dir, slash-separated
	Abs     string    // absolute path with symlinks resolved; always inside media_dir
	Size    int64     // bytes
	ModTime time.Time // mtime
}

// extensions are the file name endings scanned as media (lower-cased).
var extensions = map[string]bool{
	".mp4": true, ".m4v": true, ".mov": true, ".mkv": true, ".webm": true,
	".avi": true, ".ts": true, ".mts": true, ".m2ts": true, ".flv": true,
	".mpg": true, ".mpeg": true, ".wmv": true, ".ogv": true, ".3gp": true,
}

// idRe is the shape of every id ItemID makes: an optional slug of the path
// and 12 hex digits of its hash. Anything else is malformed before any
// file-system access happens.
var idRe = regexp.MustCompile(`^(?:[a-z0-9]+(?:-[a-z0-9]+)*-)?[0-9a-f]{12}$`)

const (
	maxSlug = 40
	hashLen = 12
)

// ValidID reports whether id has the shape of an item id.
func ValidID(id string) bool { return len(id) <= maxSlug+1+hashLen && idRe.MatchString(id) }

// ItemID derives the id of the file at rel (relative to media_dir,
// slash-separated): a readable slug of the path plus a short hash of the
// exact relative path, so two files whose slugs collide still differ and
// every pod computes the same id without coordination.
func ItemID(rel string) string {
	sum := sha256.Sum256([]byte(rel))
	h := hex.EncodeToString(sum[:])[:hashLen]
	name := strings.TrimSuffix(rel, filepath.Ext(rel))
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= maxSlug {
			break
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	if len(slug) > maxSlug {
		slug = strings.TrimRight(slug[:maxSlug], "-")
	}
	if slug == "" {
		return h
	}
	return slug + "-" + h
}

// Catalog is the set of media files under one directory. It is safe for
// concurrent use.
type Catalog struct {
	root  string // absolute, symlinks resolved
	probe ProbeFunc

	// minRescan bounds how often a lookup miss rescans media_dir, so a flood
	// of unknown ids cannot turn into a flood of directory walks.
	minRescan time.Duration

	scanMu   sync.Mutex // one scan at a time; later callers reuse its result
	mu       sync.Mutex
	items    map[string]Item // by id, from the last scan
	lastScan time.Time
	probes   map[probeKey]*probeEntry
}

type probeKey struct {
	abs   string
	size  int64
	mtime int64
}

// probeEntry is filled once; concurrent callers for the same key wait on done.
type probeEntry struct {
	done chan struct{}
	info *transcode.MediaInfo
	err  error
}

// New opens the catalog of mediaDir. The directory must exist.
func New(mediaDir string, probe ProbeFunc) (*Catalog, error) {
	abs, err := filepath.Abs(mediaDir)
	if err != nil {
		return nil, fmt.Errorf("catalog: media_dir %s: %w", mediaDir, err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("catalog: media_dir %s: %w", mediaDir, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("catalog: media_dir %s: %w", mediaDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("catalog: media_dir %s is not a directory", mediaDir)
	}
	return &Catalog{root: root, probe: probe, minRescan: time.Second, items: map[string]Item{}, probes: map[probeKey]*probeEntry{}}, nil
}

// Root is the absolute media directory.
func (c *Catalog) Root() string { return c.root }

// List scans media_dir and returns its items sorted by path.
func (c *Catalog) List() ([]Item, error) {
	items, err := c.scan()
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(items))
	for _, it := range items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Lookup returns the item with this id: ErrMalformedID when id cannot be an
// item id, ErrUnknownItem when no file under media_dir has it (a new file
// is found by rescanning).
func (c *Catalog) Lookup(id string) (Item, error) {
	if !ValidID(id) {
		return Item{}, fmt.Errorf("%w %q (want a lower-case slug and 12 hex digits)", ErrMalformedID, id)
	}
	c.mu.Lock()
	it, ok := c.items[id]
	recent := !c.lastScan.IsZero() && time.Since(c.lastScan) < c.minRescan
	c.mu.Unlock()
	if ok {
		// Confirm it is still there and still inside media_dir.
		if cur, err := c.stat(it.Path); err == nil {
			return cur, nil
		}
	}
	if recent && !ok {
		return Item{}, fmt.Errorf("%w %q", ErrUnknownItem, id)
	}
	items, err := c.scan()
	if err != nil {
		return Item{}, err
	}
	if it, ok := items[id]; ok {
		return it, nil
	}
	return Item{}, fmt.Errorf("%w %q", ErrUnknownItem, id)
}

// Info probes the item, once per (path, size, mtime). A file that is not
// media gets the same error on every call until it changes.
func (c *Catalog) Info(ctx context.Context, it Item) (*transcode.MediaInfo, error) {
	key := probeKey{abs: it.Abs, size: it.Size, mtime: it.ModTime.UnixNano()}
	c.mu.Lock()
	e, ok := c.probes[key]
	if !ok {
		e = &probeEntry{done: make(chan struct{})}
		c.probes[key] = e
		// Drop entries of older versions of this file.
		for k := range c.probes {
			if k.abs == key.abs && k != key {
				delete(c.probes, k)
			}
		}
	}
	c.mu.Unlock()
	if !ok {
		info, err := c.probe(it.Abs)
		if err != nil {
			err = fmt.Errorf("probe %s: %w", it.Path, err)
		}
		e.info, e.err = info, err
		close(e.done)
	}
	select {
	case <-e.done:
		return e.info, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// scan walks media_dir. Symlinks are followed only when their target stays
// inside media_dir; directories behind symlinks are not entered (WalkDir
// does not follow them), which also rules out loops.
func (c *Catalog) scan() (map[string]Item, error) {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	items := map[string]Item{}
	err := filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == c.root {
				return err
			}
			return nil // an unreadable sub-directory hides its files, not the others
		}
		if d.IsDir() {
			if p != c.root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !extensions[strings.ToLower(filepath.Ext(d.Name()))] {
			return nil
		}
		rel, err := filepath.Rel(c.root, p)
		if err != nil {
			return nil
		}
		it, err := c.stat(filepath.ToSlash(rel))
		if err != nil {
			return nil
		}
		items[it.ID] = it
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: scan %s: %w", c.root, err)
	}
	c.mu.Lock()
	c.items = items
	c.lastScan = time.Now()
	c.mu.Unlock()
	return items, nil
}

// stat builds the Item of rel, refusing anything whose real path leaves
// media_dir or that is not a regular file.
func (c *Catalog) stat(rel string) (Item, error) {
	p := filepath.Join(c.root, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return Item{}, err
	}
	if !Inside(c.root, real) {
		return Item{}, fmt.Errorf("%s resolves outside media_dir", rel)
	}
	st, err := os.Stat(real)
	if err != nil {
		return Item{}, err
	}
	if !st.Mode().IsRegular() {
		return Item{}, fmt.Errorf("%s is not a regular file", rel)
	}
	return Item{ID: ItemID(rel), Path: rel, Abs: real, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Inside reports whether path p is root itself or below it (both absolute and clean).
func Inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
