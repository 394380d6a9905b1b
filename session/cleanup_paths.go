package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// segmentDir is one transcode_dir/{item}/{hash} directory as a sweep found it.
type segmentDir struct {
	rel     string // "item/hash", slash-separated
	bytes   int64
	modTime time.Time // newest file's mtime; the directory's own when empty
	tmps    []string  // names of *.tmp files directly inside
}

// scanSegmentDirs lists the real directories two levels under root. Symlinks
// are never followed: a link is not a segment directory, whatever it points
// at. A missing root is an empty transcode_dir, not an error.
func scanSegmentDirs(root string) ([]segmentDir, error) {
	items, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan transcode_dir: %w", err)
	}
	var out []segmentDir
	for _, it := range items {
		if !it.IsDir() || it.Type()&fs.ModeSymlink != 0 {
			continue
		}
		hashes, err := os.ReadDir(filepath.Join(root, it.Name()))
		if err != nil {
			return nil, fmt.Errorf("scan transcode_dir: %w", err)
		}
		for _, h := range hashes {
			if !h.IsDir() || h.Type()&fs.ModeSymlink != 0 {
				continue
			}
			d := segmentDir{rel: it.Name() + "/" + h.Name()}
			if err := d.measure(filepath.Join(root, it.Name(), h.Name())); err != nil {
				return nil, fmt.Errorf("scan transcode_dir: %w", err)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// measure fills bytes, modTime and tmps from the directory's contents.
func (d *segmentDir) measure(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	d.modTime = time.Time{}
	dirTime := fi.ModTime()
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed under us (a rename, a takeover's rewrite)
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		d.bytes += info.Size()
		if info.ModTime().After(d.modTime) {
			d.modTime = info.ModTime()
		}
		if filepath.Dir(p) == dir && strings.HasSuffix(e.Name(), ".tmp") {
			d.tmps = append(d.tmps, e.Name())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d.modTime.IsZero() {
		d.modTime = dirTime
	}
	return nil
}

// newestModTime re-measures one directory's newest mtime.
func newestModTime(dir string) (time.Time, error) {
	var d segmentDir
	if err := d.measure(dir); err != nil {
		return time.Time{}, err
	}
	return d.modTime, nil
}

// checkProposal returns why the plugin's proposed path p must not be deleted,
// or "" when it passes every host check except the final store re-read.
func checkProposal(root, p string, scanned map[string]*segmentDir, live liveSet) string {
	switch {
	case p == "":
		return "empty path"
	case strings.ContainsAny(p, "\\\x00"):
		return "path contains a backslash or NUL"
	case path.IsAbs(p) || filepath.IsAbs(p):
		return "absolute path; want item/hash relative to transcode_dir"
	case hasDotDot(p):
		return "path contains .."
	case path.Clean(p) != p:
		return "path is not clean (want item/hash)"
	case strings.Count(p, "/") != 1:
		return "not a segment directory (want exactly item/hash)"
	}
	if _, ok := scanned[p]; !ok {
		return "not a segment directory found by this sweep"
	}
	item, _, _ := strings.Cut(p, "/")
	for _, rel := range []string{item, p} {
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Sprintf("cannot stat %s: %v", rel, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			return rel + " is not a plain directory (symlink or file)"
		}
	}
	realRoot, err1 := filepath.EvalSymlinks(root)
	real, err2 := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(p)))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("cannot resolve path: %v", err)
	}
	if rel, err := filepath.Rel(realRoot, real); err != nil || filepath.ToSlash(rel) != p {
		return "resolves outside transcode_dir"
	}
	if job := live.protects(p); job != "" {
		return "referenced by job " + job + " with a valid lease"
	}
	return ""
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// liveSet maps the directories referenced by jobs with a valid lease.
type liveSet []liveRef

type liveRef struct {
	job  string
	refs []string
}

// liveRefs collects the references of every job whose lease is valid by the
// store's clock: state active and lease_expires_ms > now_ms.
func liveRefs(root string, recs []abi.JobRecord, nowMs int64) liveSet {
	var out liveSet
	for _, r := range recs {
		if r.State == abi.StateActive && r.LeaseExpiresMs > nowMs {
			out = append(out, liveRef{job: r.ID, refs: refsOf(root, r)})
		}
	}
	return out
}

// protects returns the id of a live job referencing dir, or "".
func (s liveSet) protects(dir string) string {
	for _, l := range s {
		if referencesDir(l.refs, dir) {
			return l.job
		}
	}
	return ""
}

// refsOf returns the transcode_dir-relative paths a record points at. Paths
// are read every way they could mean something (relative to transcode_dir,
// absolute, relative to the working directory) and all readings are kept:
// a reference too many only keeps a directory longer. A record whose paths
// resolve to nothing still protects item/params_hash, or its whole item.
func refsOf(root string, r abi.JobRecord) []string {
	var refs []string
	add := func(rel string) {
		rel = path.Clean(filepath.ToSlash(rel))
		if rel != ".." && !strings.HasPrefix(rel, "../") && !path.IsAbs(rel) {
			refs = append(refs, rel)
		}
	}
	for _, p := range []string{r.ManifestPath, r.SegmentPrefix} {
		if p == "" {
			continue
		}
		if filepath.IsAbs(p) {
			if rel, err := filepath.Rel(root, filepath.Clean(p)); err == nil {
				add(rel)
			}
			continue
		}
		add(p)
		if abs, err := filepath.Abs(p); err == nil {
			if rel, err := filepath.Rel(root, abs); err == nil {
				add(rel)
			}
		}
	}
	validName := func(s string) bool { return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\") }
	switch {
	case validName(r.Item) && validName(r.ParamsHash):
		add(r.Item + "/" + r.ParamsHash)
	case len(refs) == 0 && validName(r.Item):
		add(r.Item)
	}
	return refs
}

// referencesDir reports whether one of refs is dir, lies inside it, or
// contains it ("." covers everything).
func referencesDir(refs []string, dir string) bool {
	for _, r := range refs {
		if r == dir || r == "." || strings.HasPrefix(r, dir+"/") || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}
