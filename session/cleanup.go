package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
)

// cleanupLockName is the store lock that lets one pod at a time sweep.
const cleanupLockName = "cleanup-sweep"

// DefaultTmpMaxAge is how old a *.tmp file must be before the sweep removes
// it: far longer than any one segment's encode, so only dead writers' files
// qualify (a live writer's file has a fresh mtime).
const DefaultTmpMaxAge = 15 * time.Minute

// CleanupConfig configures the cleanup worker (cleanup.* keys).
type CleanupConfig struct {
	Pod          string
	TranscodeDir string
	Interval     time.Duration // between sweeps (cleanup.interval)
	MaxAge       time.Duration // passed to the plugin (cleanup.max_age)
	// LockTTL is how long a sweep holds the cluster-wide lock; 0 means
	// Interval. A sweep stops deleting when it runs longer than this, so two
	// pods never delete at once.
	LockTTL        time.Duration
	HighWaterBytes int64 // passed to the plugin; 0: no limit
	// TmpMaxAge is the age past which a *.tmp file is a dead writer's; 0
	// means DefaultTmpMaxAge.
	TmpMaxAge time.Duration
	// Now is the wall clock used to age *.tmp files (time.Now when nil).
	// Segment directory ages are judged by the plugin against the store's
	// clock instead.
	Now func() time.Time
	// Metrics, when set, are the process's session metrics: the worker
	// feeds their CleanupDeleted and CleanupSweeps (else it registers its
	// own on the Registerer given to NewCleanupWorker).
	Metrics *Metrics
}

// CleanupWorker deletes segment directories that no live job needs, as the
// cleanup plugin proposes and only after the host's own checks: a path must
// be an existing item/hash directory inside transcode_dir, reached without
// symlinks, and not referenced by any job with a valid lease.
type CleanupWorker struct {
	cfg     CleanupConfig
	store   Store
	rules   CleanupRules
	log     *slog.Logger
	metrics *cleanupMetrics
}

// CleanupRefusal is one proposed path the host did not delete, and why.
type CleanupRefusal struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// SweepReport says what one sweep did.
type SweepReport struct {
	// Locked is false when another pod holds the sweep lock: nothing was done.
	Locked     bool             `json:"locked"`
	Dirs       int              `json:"dirs"`        // segment directories found
	TotalBytes int64            `json:"total_bytes"` // their size
	Proposed   []string         `json:"proposed"`    // what the plugin asked to delete
	Deleted    []string         `json:"deleted"`     // relative paths removed
	FreedBytes int64            `json:"freed_bytes"`
	Refused    []CleanupRefusal `json:"refused"`
	TmpRemoved []string         `json:"tmp_removed"` // relative paths of dead writers' *.tmp files
	Reason     string           `json:"reason,omitempty"`
}

// NewCleanupWorker returns a worker; Run sweeps every Interval, Sweep once.
func NewCleanupWorker(cfg CleanupConfig, store Store, rules CleanupRules, log *slog.Logger, reg prometheus.Registerer) *CleanupWorker {
	if cfg.Interval <= 0 {
		panic(fmt.Sprintf("session: cleanup interval must be positive, got %s", cfg.Interval))
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = cfg.Interval
	}
	if cfg.TmpMaxAge <= 0 {
		cfg.TmpMaxAge = DefaultTmpMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CleanupWorker{
		cfg:     cfg,
		store:   store,
		rules:   rules,
		log:     log.With("component", "cleanup", "pod", cfg.Pod),
		metrics: newCleanupMetrics(reg, cfg.Metrics),
	}
}

// Run sweeps every Interval until ctx is done; errors are logged and counted.
func (c *CleanupWorker) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rep, err := c.Sweep(ctx)
			switch {
			case err != nil:
				c.log.Warn("cleanup sweep failed; nothing deleted after the failure", "err", err)
			case rep.Locked && (len(rep.Deleted) > 0 || len(rep.Refused) > 0 || len(rep.TmpRemoved) > 0):
				c.log.Info("cleanup sweep", "dirs", rep.Dirs, "deleted", rep.Deleted, "freed_bytes", rep.FreedBytes,
					"refused", rep.Refused, "tmp_removed", len(rep.TmpRemoved))
			}
		}
	}
}

// Sweep runs one sweep if this pod gets the lock. Any failure to read the
// store or to scan transcode_dir deletes nothing; a plugin failure deletes
// no directory (dead writers' *.tmp files are still removed: that rule is
// the host's own).
func (c *CleanupWorker) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	ok, err := c.store.TryLock(ctx, cleanupLockName, c.cfg.Pod, c.cfg.LockTTL)
	if err != nil {
		c.metrics.sweeps.WithLabelValues("store_error").Inc()
		return rep, fmt.Errorf("cleanup: take the sweep lock: %w", err)
	}
	if !ok {
		c.metrics.sweeps.WithLabelValues("locked").Inc()
		rep.Reason = "another pod holds the sweep lock"
		return rep, nil
	}
	rep.Locked = true
	// Stop deleting once the lock may have passed to another pod.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LockTTL)
	defer cancel()

	result, err := c.sweep(ctx, &rep)
	c.metrics.sweeps.WithLabelValues(result).Inc()
	return rep, err
}

// sweep does the locked part; it returns the metric result and an error.
func (c *CleanupWorker) sweep(ctx context.Context, rep *SweepReport) (string, error) {
	root, err := filepath.Abs(c.cfg.TranscodeDir)
	if err != nil {
		return "scan_error", fmt.Errorf("cleanup: transcode_dir %q: %w", c.cfg.TranscodeDir, err)
	}
	recs, nowMs, err := c.store.List(ctx, abi.ListRequest{})
	if err != nil {
		return "store_error", fmt.Errorf("cleanup: list jobs: %w", err)
	}
	live := liveRefs(root, recs, nowMs)

	dirs, err := scanSegmentDirs(root)
	if err != nil {
		return "scan_error", fmt.Errorf("cleanup: %w", err)
	}
	rep.Dirs = len(dirs)
	byPath := make(map[string]*segmentDir, len(dirs))
	req := abi.PlanRequest{
		NowMs:          nowMs,
		MaxAgeMs:       c.cfg.MaxAge.Milliseconds(),
		HighWaterBytes: c.cfg.HighWaterBytes,
	}
	for i := range dirs {
		d := &dirs[i]
		byPath[d.rel] = d
		rep.TotalBytes += d.bytes
		cd := abi.CleanupDir{
			Path:       d.rel,
			Bytes:      d.bytes,
			ModTimeMs:  d.modTime.UnixMilli(),
			AccessMs:   d.modTime.UnixMilli(),
			Referenced: []string{},
		}
		for _, r := range recs {
			if referencesDir(refsOf(root, r), d.rel) {
				cd.Referenced = append(cd.Referenced, r.ID)
				cd.AccessMs = max(cd.AccessMs, r.UpdatedMs)
			}
		}
		cd.LiveLease = live.protects(d.rel) != ""
		req.Dirs = append(req.Dirs, cd)
	}
	req.TotalBytes = rep.TotalBytes

	deleted := map[string]bool{}
	plan, planErr := c.rules.Plan(ctx, req)
	if planErr == nil {
		rep.Proposed = plan.Delete
		var accepted []string
		for _, p := range plan.Delete {
			if reason := checkProposal(root, p, byPath, live); reason != "" {
				c.refuse(rep, p, reason)
				continue
			}
			accepted = append(accepted, p)
		}
		if len(accepted) > 0 {
			// Read the store again: a job created or taken over since the
			// first read must keep its directory.
			recs2, nowMs2, err := c.store.List(ctx, abi.ListRequest{})
			if err != nil {
				return "store_error", fmt.Errorf("cleanup: list jobs before deleting: %w", err)
			}
			live2 := liveRefs(root, recs2, nowMs2)
			for _, p := range accepted {
				if err := ctx.Err(); err != nil {
					return "error", fmt.Errorf("cleanup: sweep ran past its lock (%s): %w", c.cfg.LockTTL, err)
				}
				if job := live2.protects(p); job != "" {
					c.refuse(rep, p, "referenced by job "+job+" with a valid lease")
					continue
				}
				d := byPath[p]
				if newest, err := newestModTime(filepath.Join(root, filepath.FromSlash(p))); err != nil || newest.After(d.modTime) {
					c.refuse(rep, p, "written since the scan")
					continue
				}
				if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(p))); err != nil {
					return "error", fmt.Errorf("cleanup: delete %s: %w", p, err)
				}
				deleted[p] = true
				rep.Deleted = append(rep.Deleted, p)
				rep.FreedBytes += d.bytes
				c.metrics.deleted.Inc()
				// An item directory left empty goes too; Remove refuses a
				// non-empty one, which is what we want.
				_ = os.Remove(filepath.Join(root, filepath.FromSlash(path.Dir(p))))
			}
		}
	}

	c.removeDeadTmp(ctx, root, dirs, deleted, rep)

	if planErr != nil {
		return "plugin_error", fmt.Errorf("cleanup: plan: %w (no directory deleted)", planErr)
	}
	return "ok", nil
}

func (c *CleanupWorker) refuse(rep *SweepReport, p, reason string) {
	rep.Refused = append(rep.Refused, CleanupRefusal{Path: p, Reason: reason})
	c.metrics.refused.Inc()
	c.log.Warn("cleanup: refused a proposed deletion", "path", p, "reason", reason)
}

// removeDeadTmp removes *.tmp files older than TmpMaxAge from the scanned
// directories (checked again just before removal).
func (c *CleanupWorker) removeDeadTmp(ctx context.Context, root string, dirs []segmentDir, deleted map[string]bool, rep *SweepReport) {
	cutoff := c.cfg.Now().Add(-c.cfg.TmpMaxAge)
	for _, d := range dirs {
		if deleted[d.rel] {
			continue
		}
		for _, name := range d.tmps {
			if ctx.Err() != nil {
				return
			}
			full := filepath.Join(root, filepath.FromSlash(d.rel), name)
			fi, err := os.Lstat(full)
			if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
				continue
			}
			if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("cleanup: remove stale tmp file", "path", full, "err", err)
				continue
			}
			rep.TmpRemoved = append(rep.TmpRemoved, d.rel+"/"+name)
			c.metrics.tmpRemoved.Inc()
		}
	}
}
