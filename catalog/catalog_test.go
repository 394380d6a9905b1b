package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/transcode"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countingProbe records how often each file is probed; the catalog's job is
// to call it once per file version.
type countingProbe struct{ calls atomic.Int64 }

func (p *countingProbe) probe(path string) (*transcode.MediaInfo, error) {
	p.calls.Add(1)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(string(b), "bad") {
		return nil, errors.New("invalid data found when processing input")
	}
	return &transcode.MediaInfo{Path: path, Duration: float64(len(b))}, nil
}

func TestItemIDStableAndURLSafe(t *testing.T) {
	cases := []struct{ rel, prefix string }{
		{"movie.mp4", "movie-"},
		{"Shows/S01 E02 (Final).MKV", "shows-s01-e02-final-"},
		{"ünïcode/файл.mp4", "n-code-"},
		{"___.mp4", ""},
		{strings.Repeat("a", 200) + ".mp4", strings.Repeat("a", 40) + "-"},
	}
	for _, c := range cases {
		id := ItemID(c.rel)
		if id != ItemID(c.rel) {
			t.Errorf("%q: id not deterministic", c.rel)
		}
		if !ValidID(id) {
			t.Errorf("%q: id %q does not pass ValidID", c.rel, id)
		}
		if !strings.HasPrefix(id, c.prefix) || len(id) != len(c.prefix)+hashLen {
			t.Errorf("%q: id %q, want prefix %q + %d hex digits", c.rel, id, c.prefix, hashLen)
		}
	}
	if ItemID("a/b.mp4") == ItemID("a-b.mp4") {
		t.Error("paths with the same slug got the same id")
	}
}

func TestValidIDRejectsMalformed(t *testing.T) {
	for _, id := range []string{"", "..", "../etc/passwd", "movie", "Movie-0123456789ab",
		"movie-0123456789AB", "movie--0123456789ab", "-0123456789ab", "movie-0123456789a",
		"a/b-0123456789ab", "movie-0123456789ab\x00", strings.Repeat("a", 60) + "-0123456789ab"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

func TestScanLookupAndErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.mp4"), "aaaa")
	write(t, filepath.Join(dir, "sub", "b.MKV"), "bb")
	write(t, filepath.Join(dir, "notes.txt"), "not media")
	write(t, filepath.Join(dir, ".hidden.mp4"), "x")
	p := &countingProbe{}
	c, err := New(dir, p.probe)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Path != "a.mp4" || items[1].Path != "sub/b.MKV" {
		t.Fatalf("items = %+v, want a.mp4 and sub/b.MKV", items)
	}
	// Another catalog on the same directory (another pod) gives the same ids.
	c2, _ := New(dir, p.probe)
	items2, _ := c2.List()
	for i := range items {
		if items[i].ID != items2[i].ID {
			t.Errorf("id of %s differs between catalogs: %s vs %s", items[i].Path, items[i].ID, items2[i].ID)
		}
	}
	it, err := c.Lookup(items[1].ID)
	if err != nil || it.Path != "sub/b.MKV" {
		t.Fatalf("Lookup = %+v, %v", it, err)
	}
	if _, err := c.Lookup("../a.mp4"); !errors.Is(err, ErrMalformedID) {
		t.Errorf("Lookup(../a.mp4) = %v, want ErrMalformedID", err)
	}
	if _, err := c.Lookup("nothing-0123456789ab"); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("Lookup(unknown) = %v, want ErrUnknownItem", err)
	}
	// Misses right after a scan do not walk the directory again...
	write(t, filepath.Join(dir, "new.mov"), "n")
	if _, err := c.Lookup(ItemID("new.mov")); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("Lookup of a new file within minRescan: %v, want ErrUnknownItem", err)
	}
	// ...but once minRescan has passed, a miss rescans and finds new files.
	c.minRescan = 0
	if _, err := c.Lookup(ItemID("new.mov")); err != nil {
		t.Errorf("Lookup of a new file: %v", err)
	}
	// A removed file is unknown.
	os.Remove(filepath.Join(dir, "a.mp4"))
	if _, err := c.Lookup(items[0].ID); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("Lookup of a removed file = %v, want ErrUnknownItem", err)
	}
}

func TestSymlinksNeverLeaveMediaDir(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret.mp4"), "secret")
	write(t, filepath.Join(outside, "d", "x.mp4"), "x")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "real.mp4"), "r")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside, "secret.mp4"), filepath.Join(dir, "link-out.mp4")))
	must(os.Symlink(filepath.Join(outside, "d"), filepath.Join(dir, "dirlink")))
	must(os.Symlink(filepath.Join(dir, "real.mp4"), filepath.Join(dir, "link-in.mp4")))
	c, err := New(dir, (&countingProbe{}).probe)
	if err != nil {
		t.Fatal(err)
	}
	items, _ := c.List()
	var paths []string
	for _, it := range items {
		paths = append(paths, it.Path)
		if !Inside(c.Root(), it.Abs) {
			t.Errorf("%s resolves to %s, outside %s", it.Path, it.Abs, c.Root())
		}
	}
	if strings.Join(paths, ",") != "link-in.mp4,real.mp4" {
		t.Errorf("items = %v, want only link-in.mp4 and real.mp4", paths)
	}
	if _, err := c.Lookup(ItemID("link-out.mp4")); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("symlink out of media_dir: Lookup = %v, want ErrUnknownItem", err)
	}
	if _, err := c.Lookup(ItemID("dirlink/x.mp4")); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("file behind a directory symlink out of media_dir: Lookup = %v, want ErrUnknownItem", err)
	}
}

func TestProbeCachedPerVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mp4")
	write(t, path, "aaaa")
	write(t, filepath.Join(dir, "bad.mp4"), "bad data")
	p := &countingProbe{}
	c, _ := New(dir, p.probe)
	it, err := c.Lookup(ItemID("a.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := c.Info(context.Background(), it)
			if err != nil || info.Duration != 4 {
				t.Errorf("Info = %+v, %v", info, err)
			}
		}()
	}
	wg.Wait()
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("8 concurrent Info calls probed %d times, want 1", n)
	}
	// A new version (size and mtime change) is probed again.
	write(t, path, "aaaaaaaa")
	os.Chtimes(path, time.Now(), time.Now().Add(time.Hour))
	it, _ = c.Lookup(ItemID("a.mp4"))
	info, err := c.Info(context.Background(), it)
	if err != nil || info.Duration != 8 || p.calls.Load() != 2 {
		t.Fatalf("after change: Info = %+v, %v, probes %d; want duration 8 and 2 probes", info, err, p.calls.Load())
	}
	bad, _ := c.Lookup(ItemID("bad.mp4"))
	for i := 0; i < 2; i++ {
		if _, err := c.Info(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "bad.mp4") {
			t.Fatalf("Info(bad.mp4) = %v, want an error naming the file", err)
		}
	}
	if p.calls.Load() != 3 {
		t.Errorf("a broken file was probed %d times in total, want once", p.calls.Load()-2)
	}
}

func TestNewRejectsMissingDir(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "nope"), nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("New(missing) = %v, want an error naming the directory", err)
	}
}
