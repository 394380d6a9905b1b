package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/transcode"
)

// errIdle ends a job that nobody asked for during idle_timeout.
var errIdle = errors.New("idle")

// job is one (play session, variant) transcoder on this pod. Its goroutine
// (loop) creates the store record, runs the transcoder (again at a new
// start segment after a seek) and removes the record when it ends.
type job struct {
	m         *Manager
	id        string
	session   string
	item      string
	variant   transcode.Variant
	input     string
	info      *transcode.MediaInfo
	dir       string
	count     int
	durations []float64
	log       *slog.Logger

	adopted     *abi.JobRecord // run under this record instead of creating one (takeover)
	adoptedSent time.Time      // when the takeover that granted adopted was made (renew clock)
	lease       *Lease         // from the renew worker once the record is ours
	ready       chan struct{}  // closed once the store answered Create
	createErr   error          // set before ready closes
	foreign     *abi.JobRecord
	done        chan struct{} // closed when loop returns

	mu        sync.Mutex
	owner     string
	epoch     int64
	state     string
	start     int // first segment of the current run
	current   int // segment the pipeline produces (or waits to produce)
	completed int // last segment published, -1 none
	highest   int // highest segment requested, the throttle's reference
	lastReq   time.Time
	restartAt int // ≥0: the run is (to be) restarted there (a seek)
	runCancel context.CancelFunc
	stopReq   bool // StopSession: end without restarting
	ending    bool // loop is past its last run: new requests need a new job
	endErr    error
	fenced    error         // set by fence: every later commit fails with it
	changed   chan struct{} // closed and replaced on every change (requests, progress, end)
}

func newJob(m *Manager, id string, r SegmentRequest, dir string, count int) *job {
	j := &job{
		m: m, id: id, session: r.Session, item: r.Item, variant: r.Variant, input: r.ItemPath, info: r.Info,
		dir: dir, count: count, durations: transcode.SegmentDurations(r.Info, r.Variant.SegmentSeconds),
		ready: make(chan struct{}), done: make(chan struct{}),
		start: r.N, current: r.N, completed: -1, highest: r.N, lastReq: time.Now(), restartAt: -1,
		changed: make(chan struct{}),
	}
	j.log = m.log.With("job", id, "session", r.Session, "item", r.Item, "variant", r.Variant.Name)
	j.setState(jobStarting)
	return j
}

// broadcast wakes everyone waiting on j.changed; the caller holds j.mu.
func (j *job) broadcast() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// setState moves the job between wasmhls_jobs states ("" = gone).
func (j *job) setState(s string) {
	if j.state == s {
		return
	}
	if j.state != "" {
		j.m.metrics.Jobs.WithLabelValues(j.state).Dec()
	}
	if s != "" {
		j.m.metrics.Jobs.WithLabelValues(s).Inc()
	}
	j.state = s
}

// requested records a request for segment n. With missing set (the file
// does not exist) a request behind the job or farther than ahead_segments in
// front of it restarts the run at n: a seek. It returns false when the job is
// ending and cannot take the request.
func (j *job) requested(n int, missing bool) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ending {
		return false
	}
	j.lastReq = time.Now()
	cur := j.current
	if j.restartAt >= 0 {
		cur = j.restartAt
	}
	if missing && (n < cur || n > cur+j.m.cfg.AheadSegments) {
		j.log.Info("seek: restarting job", "from", cur, "to", n)
		j.restartAt = n
		// The playhead moved: throttle against it, not the old high mark.
		j.highest = n
		if j.runCancel != nil {
			j.runCancel()
		}
	} else if n > j.highest {
		j.highest = n
	}
	j.setProgressLocked()
	j.broadcast()
	return true
}

// progressLocked is what the next renew carries; the caller holds j.mu.
func (j *job) progressLocked() abi.Progress {
	var offset float64
	for i := 0; i <= j.completed && i < len(j.durations); i++ {
		offset += j.durations[i] * 1000
	}
	return abi.Progress{LastCompletedSegment: j.completed, LastRequestedSegment: j.highest, LastDurableOffsetMs: int64(offset)}
}

// setProgressLocked hands the progress to the renew worker; the caller holds j.mu.
func (j *job) setProgressLocked() {
	if j.lease != nil {
		j.lease.SetProgress(j.progressLocked())
	}
}

// fence stops the job at once and makes sure it publishes nothing more: its
// lease was lost or removed. The job ends as lost (its record left alone).
// The lease has already counted wasmhls_fenced_total.
func (j *job) fence(reason error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fenced == nil {
		j.fenced = reason
	}
	j.stopReq = true
	if j.runCancel != nil {
		j.runCancel()
	}
	j.broadcast()
}

// stop ends the job without restarting it (StopSession).
func (j *job) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopReq = true
	if j.runCancel != nil {
		j.runCancel()
	}
	j.broadcast()
}

// wait blocks until path exists (true), the job has ended without it
// (false, nil: the caller may start another job), the job failed, or ctx ends.
func (j *job) wait(ctx context.Context, path string) (bool, error) {
	for {
		if fileExists(path) {
			return true, nil
		}
		j.mu.Lock()
		ch, ended, endErr := j.changed, j.ending && j.state == "", j.endErr
		j.mu.Unlock()
		if ended {
			if fileExists(path) {
				return true, nil
			}
			if endErr != nil {
				return false, fmt.Errorf("job %s: %w", j.id, endErr)
			}
			return false, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// loop is the job's goroutine.
func (j *job) loop() {
	m := j.m
	defer m.wg.Done()
	defer close(j.done)

	var rec abi.JobRecord
	var err error
	// The lease runs from when the store was asked, not when it answered.
	sent := m.renew.Now()
	if j.adopted != nil {
		rec, sent = *j.adopted, j.adoptedSent
		j.mu.Lock()
		j.completed = max(j.completed, rec.LastCompletedSegment)
		j.mu.Unlock()
	} else {
		rec, err = j.create()
	}
	if err != nil || j.foreign != nil {
		j.createErr = err
		close(j.ready)
		m.forget(j)
		j.finish(nil)
		return
	}
	j.mu.Lock()
	j.owner, j.epoch = rec.Owner, rec.Epoch
	j.lease = m.renew.AddSent(j.id, rec.Epoch, j.progressLocked(), sent)
	j.mu.Unlock()
	close(j.ready)

	var runErr error
	for {
		j.mu.Lock()
		if j.restartAt >= 0 {
			j.start, j.current, j.restartAt = j.restartAt, j.restartAt, -1
		}
		start := j.start
		runCtx, cancel := context.WithCancel(m.ctx)
		j.runCancel = cancel
		j.setState(jobRunning)
		j.mu.Unlock()

		m.metrics.JobsStarted.Inc()
		j.log.Info("transcoder start", "start", start, "epoch", rec.Epoch)
		// A lease lost between two commits stops the run at once, not at
		// the next commit. The watcher ends with the run.
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-j.lease.Fenced():
				j.fence(j.lease.Err())
			case <-runCtx.Done():
			}
		}()
		runErr = m.run(runCtx, transcode.JobSpec{
			Input: j.input, Info: j.info, Variant: j.variant, OutDir: j.dir, Start: start,
			Next: j.next, Commit: j.commit, Progress: j.progress,
			Logger: j.log.With("epoch", rec.Epoch),
		})
		cancel()
		<-watched
		m.unclaim("", j)

		j.mu.Lock()
		j.runCancel = nil
		j.broadcast() // its claims are gone: jobs waiting on them re-check
		again := j.restartAt >= 0 && !j.stopReq && j.fenced == nil && m.ctx.Err() == nil && !errors.Is(runErr, ErrLost)
		if !again {
			j.ending = true
		}
		j.mu.Unlock()
		if !again {
			break
		}
	}
	j.end(runErr)
}

// create makes the store record with this pod as owner. A record that
// another pod owns (or that this pod released) becomes j.foreign.
func (j *job) create() (abi.JobRecord, error) {
	m := j.m
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	rel, _ := filepath.Rel(m.cfg.TranscodeDir, j.dir)
	rec, created, err := m.store.Create(ctx, abi.JobRecord{
		ID: j.id, Item: j.item, Variant: j.variant.Name, ParamsHash: j.variant.Hash(),
		Owner: m.cfg.Pod, OwnerURL: m.cfg.AdvertiseURL, State: abi.StateActive,
		SegmentPrefix: filepath.ToSlash(rel), LastCompletedSegment: -1, LastRequestedSegment: j.start,
	}, m.cfg.Lease)
	if err != nil {
		return rec, fmt.Errorf("store create: %w", err)
	}
	if !created && (rec.Owner != m.cfg.Pod || rec.State != abi.StateActive) {
		j.foreign = &rec
		return rec, nil
	}
	// created, or our own active record from an earlier job of this pod: adopt it.
	return rec, nil
}

// next is JobSpec.Next: skip segments that exist, pause while the job is
// ahead_segments past the highest request, stop after idle_timeout, and wait
// for another local job that already produces the same segment.
func (j *job) next(ctx context.Context, n int) (int, error) {
	m := j.m
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for n < j.count && fileExists(transcode.SegmentPath(j.dir, n)) {
			n++
		}
		if n >= j.count {
			return 0, transcode.ErrDone
		}
		j.mu.Lock()
		if j.current != n {
			j.current = n
			j.broadcast()
		}
		if n > j.highest+m.cfg.AheadSegments {
			j.setState(jobPaused)
			idleLeft := time.Until(j.lastReq.Add(m.cfg.IdleTimeout))
			ch := j.changed
			j.mu.Unlock()
			if idleLeft <= 0 {
				return 0, errIdle
			}
			t := time.NewTimer(idleLeft)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		j.setState(jobRunning)
		j.mu.Unlock()
		if other := m.claim(transcode.SegmentPath(j.dir, n), j); other != nil {
			other.mu.Lock()
			ch := other.changed
			other.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			continue
		}
		return n, nil
	}
}

// commit is JobSpec.Commit: the store records the segment before it is
// published; a lost lease stops the job without publishing.
func (j *job) commit(ctx context.Context, n int, _ string) error {
	j.mu.Lock()
	owner, epoch, fenced := j.owner, j.epoch, j.fenced
	j.mu.Unlock()
	if fenced != nil {
		return fmt.Errorf("commit segment %d: %w", n, fenced)
	}
	// Self-fencing: no write once the last renew is too old (DESIGN rule 2).
	if err := j.lease.CheckWrite(); err != nil {
		return fmt.Errorf("commit segment %d: %w", n, err)
	}
	var endMs float64
	for i := 0; i <= n && i < len(j.durations); i++ {
		endMs += j.durations[i] * 1000
	}
	if err := j.m.store.CommitSegment(ctx, j.id, owner, epoch, n, int64(endMs)); err != nil {
		if errors.Is(err, ErrLost) || errors.Is(err, ErrNotFound) {
			lost := fmt.Errorf("commit segment %d: %w (%v)", n, ErrLost, err)
			j.lease.fence(lost) // counts wasmhls_fenced_total; the renew worker drops it
			return lost
		}
		return fmt.Errorf("commit segment %d: %w", n, err)
	}
	// The pipeline's next segment is n+1 from the moment n.ts can appear:
	// move the position now, before the rename, so that a request that sees
	// n.ts and asks for n+1+ahead is judged against n+1, not n, and is not
	// mistaken for a seek.
	j.mu.Lock()
	if n+1 > j.current {
		j.current = n + 1
	}
	j.mu.Unlock()
	return nil
}

// progress is JobSpec.Progress: a segment was published.
func (j *job) progress(s transcode.SegmentStats) {
	mt := j.m.metrics
	mt.Segments.Inc()
	mt.Frames.Add(float64(s.Frames))
	mt.TranscodeSeconds.Observe(s.Elapsed.Seconds())
	if s.Elapsed > 0 {
		mt.FPS.Set(float64(s.Frames) / s.Elapsed.Seconds())
	}
	j.m.unclaim(transcode.SegmentPath(j.dir, s.N), j)
	j.mu.Lock()
	if s.N > j.completed {
		j.completed = s.N
	}
	j.setProgressLocked()
	j.broadcast()
	j.mu.Unlock()
}

// end settles the record after the last run: released on shutdown (another
// pod may take it over at once), left alone when lost (it is not ours),
// deleted otherwise (idle, stopped, finished, failed).
func (j *job) end(runErr error) {
	m := j.m
	j.mu.Lock()
	owner, epoch, stopReq := j.owner, j.epoch, j.stopReq
	// Self-fenced (ErrFenced) counts as lost too: the record may no longer
	// be ours, so it is left to the store.
	lost := errors.Is(runErr, ErrLost) || errors.Is(runErr, ErrFenced) || j.fenced != nil
	if j.fenced != nil {
		runErr = j.fenced
	}
	j.mu.Unlock()
	m.renew.Remove(j.id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var failure error
	switch {
	case lost:
		j.log.Warn("lease lost: job stopped", "epoch", epoch, "err", runErr)
		// %w twice: waiters see ErrUnavailable and why (ErrLost lets an
		// HA request go back to the non-owner path).
		failure = fmt.Errorf("%w: %w", ErrUnavailable, runErr)
	case m.ctx.Err() != nil:
		if err := m.store.Release(ctx, j.id, owner, epoch); err != nil {
			j.log.Warn("release on shutdown", "err", err)
		}
		failure = fmt.Errorf("%w: pod %s is shutting down", ErrUnavailable, m.cfg.Pod)
	default:
		clean := runErr == nil || errors.Is(runErr, transcode.ErrDone) || errors.Is(runErr, errIdle) ||
			(stopReq && errors.Is(runErr, context.Canceled))
		if !clean {
			j.log.Error("transcoder failed", "err", runErr)
			failure = fmt.Errorf("transcode %s: %w", j.variant.Name, runErr)
		} else {
			j.log.Info("job ended", "reason", endReason(runErr, stopReq))
		}
		if err := m.store.Delete(ctx, j.id, owner, epoch); err != nil && !errors.Is(err, ErrNotFound) {
			j.log.Warn("delete job record", "err", err)
		}
	}
	m.forget(j)
	j.finish(failure)
}

// finish marks the job gone and wakes its waiters.
func (j *job) finish(failure error) {
	j.mu.Lock()
	j.ending = true
	j.endErr = failure
	j.setState("")
	j.broadcast()
	j.mu.Unlock()
}

func endReason(err error, stopped bool) string {
	switch {
	case stopped:
		return "stopped"
	case errors.Is(err, errIdle):
		return "idle"
	default:
		return "finished"
	}
}

func (j *job) status() JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	return JobStatus{
		ID: j.id, Session: j.session, Item: j.item, Variant: j.variant.Name, State: j.state,
		Owner: j.owner, Epoch: j.epoch, Start: j.start, Current: j.current, LastCompleted: j.completed,
		HighestRequested: j.highest, Segments: j.count, IdleSeconds: time.Since(j.lastReq).Seconds(),
		LeaseExpiresMs: leaseExpires(j.lease),
	}
}

func leaseExpires(l *Lease) int64 {
	if l == nil {
		return 0
	}
	return l.ExpiresMs()
}
