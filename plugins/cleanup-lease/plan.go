package main

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/wasmhls/wasmhls/abi"
)

// plan is the whole rule set (see main.go).
func plan(req abi.PlanRequest) (abi.PlanResponse, error) {
	if req.NowMs <= 0 {
		return abi.PlanResponse{}, fmt.Errorf("plan: now_ms must be > 0, got %d", req.NowMs)
	}
	if req.MaxAgeMs < 0 || req.HighWaterBytes < 0 {
		return abi.PlanResponse{}, fmt.Errorf("plan: max_age_ms (%d) and high_water_bytes (%d) must be >= 0", req.MaxAgeMs, req.HighWaterBytes)
	}
	var (
		out        = abi.PlanResponse{Delete: []string{}}
		total      = req.TotalBytes
		rest       []abi.CleanupDir // deletable, not old enough
		aged, hw   int
		freedBytes int64
		skipLive   int
	)
	for _, d := range req.Dirs {
		if d.LiveLease {
			skipLive++
			continue
		}
		if !safePath(d.Path) {
			continue
		}
		if req.MaxAgeMs > 0 && req.NowMs-lastUse(d) > req.MaxAgeMs {
			out.Delete = append(out.Delete, d.Path)
			total -= d.Bytes
			freedBytes += d.Bytes
			aged++
			continue
		}
		rest = append(rest, d)
	}
	if req.HighWaterBytes > 0 && total > req.HighWaterBytes {
		// Unreferenced before referenced-by-dead-jobs, then least recently used.
		slices.SortStableFunc(rest, func(a, b abi.CleanupDir) int {
			if c := cmp.Compare(min(len(a.Referenced), 1), min(len(b.Referenced), 1)); c != 0 {
				return c
			}
			return cmp.Compare(lastUse(a), lastUse(b))
		})
		for _, d := range rest {
			if total <= req.HighWaterBytes {
				break
			}
			out.Delete = append(out.Delete, d.Path)
			total -= d.Bytes
			freedBytes += d.Bytes
			hw++
		}
	}
	out.Reason = fmt.Sprintf("%d older than max_age, %d for high water; %d bytes freed, %d bytes left; %d skipped with a live lease",
		aged, hw, freedBytes, total, skipLive)
	return out, nil
}

func lastUse(d abi.CleanupDir) int64 { return max(d.ModTimeMs, d.AccessMs) }

// safePath accepts only relative, clean, slash-separated paths inside
// transcode_dir (the host checks again; a plugin must not rely on that).
func safePath(p string) bool {
	if p == "" || p == "." || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	return p != ".." && !strings.HasPrefix(p, "../")
}
