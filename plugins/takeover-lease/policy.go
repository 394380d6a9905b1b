package main

import (
	"errors"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
)

type config struct {
	GraceMs       int64 `json:"grace_ms"`
	MaxJobsPerPod int   `json:"max_jobs_per_pod"`
	WaitMs        int64 `json:"wait_ms"`
}

func defaultConfig() config { return config{WaitMs: 1000} }

func (c config) validate() error {
	switch {
	case c.GraceMs < 0:
		return fmt.Errorf("grace_ms must be >= 0, got %d", c.GraceMs)
	case c.MaxJobsPerPod < 0:
		return fmt.Errorf("max_jobs_per_pod must be >= 0, got %d", c.MaxJobsPerPod)
	case c.WaitMs <= 0:
		return fmt.Errorf("wait_ms must be > 0, got %d", c.WaitMs)
	}
	return nil
}

// decide is the whole policy. Expiry is judged by the store's clock
// (req.NowMs, else the record's now_ms) and never by the pod's: without a
// store time the answer is an error, and an error never leads to a takeover.
func decide(cfg config, req abi.DecideRequest) (abi.DecideResponse, error) {
	rec := req.Record
	if rec.ID == "" {
		return abi.DecideResponse{}, errors.New("decide: record.id is empty")
	}
	now := req.NowMs
	if now == 0 {
		now = rec.NowMs
	}
	if now <= 0 {
		return abi.DecideResponse{}, fmt.Errorf("decide %s: no store time (now_ms) in the request", rec.ID)
	}

	released := rec.State == abi.StateReleased
	expiresAt := rec.LeaseExpiresMs + cfg.GraceMs
	if !released && now < expiresAt {
		// A valid lease (or one in its grace period): the owner produces.
		if rec.OwnerURL == "" || rec.Owner == req.Pod {
			// Proxying to nobody or to ourselves would loop: wait for
			// the lease to end instead.
			return abi.DecideResponse{Decision: abi.DecideWait, RetryAfterMs: min(expiresAt-now, cfg.WaitMs),
				Reason: fmt.Sprintf("lease of %s valid for %d ms and no other owner to proxy to", rec.Owner, expiresAt-now)}, nil
		}
		return abi.DecideResponse{Decision: abi.DecideProxy,
			Reason: fmt.Sprintf("lease of %s valid for %d ms", rec.Owner, rec.LeaseExpiresMs-now)}, nil
	}

	why := "released by " + rec.Owner
	if !released {
		why = fmt.Sprintf("lease of %s expired %d ms ago", rec.Owner, now-rec.LeaseExpiresMs)
	}
	if cfg.MaxJobsPerPod > 0 && req.PodJobs >= cfg.MaxJobsPerPod {
		// The owner is gone or leaving, so proxying would not help.
		return abi.DecideResponse{Decision: abi.DecideWait, RetryAfterMs: cfg.WaitMs,
			Reason: fmt.Sprintf("%s, but pod %s runs %d jobs (max_jobs_per_pod %d)", why, req.Pod, req.PodJobs, cfg.MaxJobsPerPod)}, nil
	}
	return abi.DecideResponse{Decision: abi.DecideTakeover, Reason: why}, nil
}
