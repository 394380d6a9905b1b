package session

// The HA request path (issue 4). Decisions written down here:
//
//   - A non-owner serves a finished file without asking anyone; for a missing
//     segment it asks the takeover policy (remote). Proxy goes to owner_url
//     (hls does the HTTP; a failed proxy comes back with ProxyFailed and is
//     decided again, not proxied to that owner until its lease moves).
//     Wait polls the shared directory and re-reads the record. Takeover is
//     the store's atomic takeover; the winner runs the job under the new
//     epoch, the loser decides again on the record the store returned.
//   - Fail safe: a policy or store error never takes over; the request gets
//     ErrUnavailable (503 + Retry-After).
//   - DELETE /api/v1/sessions/{session} deletes the records of the session's
//     jobs on other pods (Manager.StopSession); the owner's next commit or
//     renew finds the record gone, fences the job and stops it. A deleted
//     record (not a "stop" flag) was chosen because the owner already treats
//     not_found as lost, and a viewer still playing simply re-creates it.
//   - Drain (SIGTERM): Manager.Close marks the pod closed (/readyz 503, no new
//     job, no takeover), cancels every run (the segment in flight is dropped)
//     and releases every record, so the next request elsewhere takes over at
//     once (reason "released").
//   - Store down: /readyz answers 200 "degraded" (ErrDegraded), not 503, since
//     every pod shares the store and a 503 everywhere would stop serving the
//     files that exist; jobs self-fence at the renew deadline.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/transcode"
)

// errRecreate: the record this request was decided on is gone (deleted,
// expired away) or is this pod's own again; the caller goes back to the
// create path, which starts, joins or adopts the job locally.
var errRecreate = errors.New("job record gone or ours again")

// Takeover reasons (wasmhls_takeovers_total{reason}).
const (
	takeoverReleased = "released" // the owner released the job (drain)
	takeoverExpired  = "expired"  // the owner's lease ran out (crash, pause, partition)
	takeoverPolicy   = "policy"   // the policy took over a job with a valid-looking record (the store still checked)
)

// Bounds of one wait round on the non-owner path.
const (
	minWaitRound = 50 * time.Millisecond
	maxWaitRound = 2 * time.Second
	// filePoll is how often a waiting request looks for the segment file,
	// which another pod writes into the shared directory.
	filePoll = 100 * time.Millisecond
	// ownerGoneRound: how often the record is read again while its owner
	// failed a proxy (draining pods release within one segment's time).
	ownerGoneRound = 250 * time.Millisecond
)

// remoteMaxWait bounds one request on the non-owner path: long enough for
// a dead owner's lease to run out and a takeover to produce the segment.
func (m *Manager) remoteMaxWait() time.Duration { return max(3*m.cfg.Lease, 30*time.Second) }

// remote handles a request for a job another pod owns (rec, just read from
// the store), DESIGN.md rule 4: serve the file if it exists; otherwise ask
// the takeover policy → proxy to owner_url, wait and decide again, or take
// the job over in the store. It returns the result, or (adopt non-nil) the
// record this pod now owns after winning a takeover: the caller runs the
// job under it. A policy or store error never leads to a takeover: the
// request fails with ErrUnavailable (503 + Retry-After).
func (m *Manager) remote(ctx context.Context, rec abi.JobRecord, r SegmentRequest) (res SegmentResult, adopt *abi.JobRecord, err error) {
	if m.policy == nil {
		// Single host: no policy, so nobody may take over another pod's job.
		return SegmentResult{}, nil, fmt.Errorf("%w: job %s is owned by pod %s (epoch %d) and this pod has no takeover policy",
			ErrUnavailable, rec.ID, rec.Owner, rec.Epoch)
	}
	path := transcode.SegmentPath(m.SegmentDir(r.Item, r.Variant), r.N)
	ctx, cancel := context.WithTimeout(ctx, m.remoteMaxWait())
	defer cancel()
	// proxyFailed: proxying to this owner URL failed; do not proxy there
	// again until the owner shows it is alive (its lease moved forward).
	proxyFailed, failedLease := r.ProxyFailed, rec.LeaseExpiresMs
	fresh := true
	for {
		if fileExists(path) {
			return SegmentResult{Path: path}, nil, nil
		}
		if !fresh {
			cur, err := m.getRecord(ctx, rec.ID)
			if errors.Is(err, ErrNotFound) {
				return SegmentResult{}, nil, errRecreate
			}
			if err != nil {
				return SegmentResult{}, nil, m.unavailable(ctx, rec, err)
			}
			if proxyFailed != "" && (cur.OwnerURL != proxyFailed || cur.LeaseExpiresMs > failedLease) {
				proxyFailed = "" // a new owner, or the old one renewed: it is alive
			}
			rec = cur
		}
		fresh = false
		if rec.Owner == m.cfg.Pod && rec.State == abi.StateActive {
			return SegmentResult{}, nil, errRecreate
		}
		d, err := m.decide(ctx, rec, r)
		if err != nil {
			return SegmentResult{}, nil, m.unavailable(ctx, rec, err)
		}
		switch d.Decision {
		case abi.DecideProxy:
			// Never proxy a proxied request (loop guard), to this pod, or to
			// an owner that just failed us: wait until its lease can be judged.
			if !r.Proxied && rec.OwnerURL != "" && rec.OwnerURL != m.cfg.AdvertiseURL && rec.OwnerURL != proxyFailed {
				// The owner learns the viewer's position from the proxied
				// request itself: it arrives there as a normal request.
				m.metrics.Proxied.Inc()
				return SegmentResult{ProxyTo: rec.OwnerURL}, nil, nil
			}
			// An owner that just failed a proxy is draining (it releases
			// the job within moments) or dead (its lease runs out): look
			// at the record again soon rather than a whole round later.
			var hint time.Duration
			if proxyFailed != "" && rec.OwnerURL == proxyFailed {
				hint = ownerGoneRound
			}
			if err := m.waitRound(ctx, path, rec, hint); err != nil {
				return SegmentResult{}, nil, m.unavailable(ctx, rec, err)
			}
		case abi.DecideWait:
			if err := m.waitRound(ctx, path, rec, time.Duration(d.RetryAfterMs)*time.Millisecond); err != nil {
				return SegmentResult{}, nil, m.unavailable(ctx, rec, err)
			}
		case abi.DecideTakeover:
			won, cur, err := m.takeover(ctx, rec, d.Reason)
			switch {
			case errors.Is(err, errRecreate):
				return SegmentResult{}, nil, errRecreate
			case err != nil:
				return SegmentResult{}, nil, m.unavailable(ctx, rec, err)
			case won:
				return SegmentResult{}, &cur, nil
			}
			// Lost the race (or the lease was valid after all): decide
			// again on the record the store returned, at once.
			rec, fresh = cur, true
		default:
			return SegmentResult{}, nil, m.unavailable(ctx, rec,
				fmt.Errorf("takeover policy answered unknown decision %q", d.Decision))
		}
	}
}

// unavailable wraps why the non-owner path gives up as ErrUnavailable (or
// returns the request's own cancellation as is).
func (m *Manager) unavailable(ctx context.Context, rec abi.JobRecord, err error) error {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: job %s owned by pod %s (epoch %d): %v", ErrUnavailable, rec.ID, rec.Owner, rec.Epoch, err)
}

// getRecord reads a record with a bounded call.
func (m *Manager) getRecord(ctx context.Context, id string) (abi.JobRecord, error) {
	cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	rec, err := m.store.Get(cctx, id)
	if err != nil {
		return rec, fmt.Errorf("store get %s: %w", id, err)
	}
	return rec, nil
}

// storeCallTimeout bounds one store call made for a request.
const storeCallTimeout = 5 * time.Second

// decide asks the takeover policy about rec, judged by the store's clock.
func (m *Manager) decide(ctx context.Context, rec abi.JobRecord, r SegmentRequest) (abi.DecideResponse, error) {
	now := rec.NowMs
	if now == 0 {
		// A store that did not stamp the record: read the clock from List.
		cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
		_, n, err := m.store.List(cctx, abi.ListRequest{Limit: 1})
		cancel()
		if err != nil {
			return abi.DecideResponse{}, fmt.Errorf("store clock: %w", err)
		}
		now = n
	}
	m.mu.Lock()
	podJobs := len(m.jobs)
	m.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	d, err := m.policy.Decide(cctx, abi.DecideRequest{Record: rec, NowMs: now, Pod: m.cfg.Pod, PodJobs: podJobs, RequestedSegment: r.N})
	if err != nil {
		return d, fmt.Errorf("takeover policy: %w", err)
	}
	m.log.Debug("takeover policy", "job", rec.ID, "owner", rec.Owner, "epoch", rec.Epoch, "state", rec.State,
		"lease_left_ms", rec.LeaseExpiresMs-now, "segment", r.N, "decision", d.Decision, "reason", d.Reason)
	return d, nil
}

// waitRound waits for the segment file to appear, for at most hint (the
// policy's retry_after; 0: until rec's lease can be judged), clamped to
// [minWaitRound, maxWaitRound]. It returns nil when the round is over
// (file there or not: the caller looks again) and an error when ctx or the
// manager ends.
func (m *Manager) waitRound(ctx context.Context, path string, rec abi.JobRecord, hint time.Duration) error {
	d := maxWaitRound
	if hint > 0 {
		d = min(d, hint)
	}
	if rec.NowMs > 0 && rec.State == abi.StateActive {
		// Re-decide just after the lease ends, not a whole round later.
		if left := time.Duration(rec.LeaseExpiresMs-rec.NowMs)*time.Millisecond + minWaitRound; left < d {
			d = left
		}
	}
	d = max(d, minWaitRound)
	end := time.NewTimer(d)
	defer end.Stop()
	poll := time.NewTicker(filePoll) // the file is written by another process
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return fmt.Errorf("pod %s is shutting down", m.cfg.Pod)
		case <-end.C:
			return nil
		case <-poll.C:
			if fileExists(path) {
				return nil
			}
		}
	}
}

// takeover takes rec over in the store (atomic: only one pod wins, and only
// once the lease expired or was released). It reports whether this pod won
// and the record the store returned: ours with epoch+1, or the current one.
func (m *Manager) takeover(ctx context.Context, rec abi.JobRecord, policyReason string) (bool, abi.JobRecord, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		// A draining pod takes no job; the next pod will.
		return false, rec, fmt.Errorf("pod %s is shutting down", m.cfg.Pod)
	}
	reason := takeoverPolicy
	switch {
	case rec.State == abi.StateReleased:
		reason = takeoverReleased
	case rec.NowMs > 0 && rec.LeaseExpiresMs <= rec.NowMs:
		reason = takeoverExpired
	}
	cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	cur, err := m.store.Takeover(cctx, rec.ID, m.cfg.Pod, m.cfg.AdvertiseURL, m.cfg.Lease)
	switch {
	case errors.Is(err, ErrLeaseValid):
		m.log.Info("takeover refused: lease valid", "job", rec.ID, "owner", cur.Owner, "epoch", cur.Epoch)
		if cur.ID == "" {
			// A store that did not return the record: read it.
			if cur, err = m.getRecord(ctx, rec.ID); err != nil {
				return false, rec, err
			}
		}
		return false, cur, nil
	case errors.Is(err, ErrNotFound):
		return false, rec, errRecreate
	case err != nil:
		return false, rec, fmt.Errorf("store takeover %s: %w", rec.ID, err)
	}
	m.metrics.Takeovers.WithLabelValues(reason).Inc()
	m.log.Info("took job over", "job", rec.ID, "from", rec.Owner, "from_epoch", rec.Epoch, "epoch", cur.Epoch,
		"reason", reason, "policy_reason", policyReason, "last_completed", cur.LastCompletedSegment)
	return true, cur, nil
}

// takeoverStart is where the winner of a takeover restarts the transcoder
// for a request of segment n: at n, or at last_completed_segment+1 when that
// is earlier and close enough that the viewer is merely behind (not a seek);
// segments that exist are skipped anyway.
func takeoverStart(rec abi.JobRecord, n, ahead int) int {
	s := rec.LastCompletedSegment + 1
	if s >= 0 && s < n && n-s <= ahead {
		return s
	}
	return n
}
