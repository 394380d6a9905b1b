package session

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// ErrFenced: this pod fenced itself because its last successful renew was
// sent longer ago than the renew deadline (DESIGN.md rule 2). It lasts while
// renews fail; a renew that succeeds again lifts it, a lost one turns it into
// ErrLost for good.
var ErrFenced = errors.New("session: lease renew deadline passed (self-fenced)")

// errLeaseRemoved: the Manager removed the lease (job ended or replaced).
var errLeaseRemoved = errors.New("session: lease no longer held by this pod")

// Lease is one job's lease as this pod holds it. The transcoder of the job
// calls CheckWrite before it commits or publishes a segment and stops when
// Fenced is closed.
type Lease struct {
	ID    string
	Epoch int64

	w      *RenewWorker
	fenced chan struct{}

	mu         sync.Mutex
	err        error // set once, when fenced closes
	progress   abi.Progress
	lastOK     time.Time // send time of the last successful renew (worker clock)
	expiresMs  int64     // lease end in the store's clock, from the last renew
	selfFenced bool      // the deadline passed and no renew succeeded since
}

// Fenced is closed when the lease is lost for good (taken over, record gone)
// or removed from the renew worker; Err then says which.
func (l *Lease) Fenced() <-chan struct{} { return l.fenced }

// Err is nil while the lease is held, else why it is not.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// SetProgress records the job's progress; the next renew carries it.
func (l *Lease) SetProgress(p abi.Progress) {
	l.mu.Lock()
	l.progress = p
	l.mu.Unlock()
}

// Progress is the progress the next renew will carry.
func (l *Lease) Progress() abi.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.progress
}

// ExpiresMs is the lease end the store reported at the last renew (store
// clock, unix ms; 0 before the first renew).
func (l *Lease) ExpiresMs() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiresMs
}

// CheckWrite returns nil when the job may write now: the lease is held and
// its last successful renew was sent within the deadline. The deadline is
// measured from when the renew was sent, not when its reply came: the store
// extended the lease from some moment after the send, so the lease cannot
// have ended before send + lease, and the deadline is shorter than that.
func (l *Lease) CheckWrite() error {
	if err := l.Err(); err != nil {
		return err
	}
	return l.checkDeadline()
}

// checkDeadline applies the self-fencing rule, counting and logging the
// moment it starts to bite.
func (l *Lease) checkDeadline() error {
	now := l.w.cfg.Now()
	l.mu.Lock()
	since := now.Sub(l.lastOK)
	if since <= l.w.cfg.Deadline {
		l.mu.Unlock()
		return nil
	}
	first := !l.selfFenced
	l.selfFenced = true
	l.mu.Unlock()
	if first {
		l.w.metrics.fenced.Inc()
		l.w.log.Warn("renew deadline passed; job stops writing until a renew succeeds",
			"job", l.ID, "epoch", l.Epoch, "since_last_renew_sent", since, "deadline", l.w.cfg.Deadline)
	}
	return fmt.Errorf("%w: job %s epoch %d: last successful renew sent %s ago, deadline %s",
		ErrFenced, l.ID, l.Epoch, since.Round(time.Millisecond), l.w.cfg.Deadline)
}

// renewed records a successful renew sent at sent. It reports whether this
// lifted a self-fence.
func (l *Lease) renewed(sent time.Time, expiresMs int64) (lifted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sent.After(l.lastOK) {
		l.lastOK = sent
	}
	l.expiresMs = expiresMs
	lifted = l.selfFenced
	l.selfFenced = false
	return lifted
}

func (l *Lease) lastSent() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK
}

// fence ends the lease for good. It reports whether this call did it (a
// lease is fenced once; later reasons are dropped).
func (l *Lease) fence(err error) bool {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return false
	}
	l.err = err
	counted := l.selfFenced // a self-fence already counted this lease
	l.mu.Unlock()
	close(l.fenced)
	if errors.Is(err, ErrLost) && !counted {
		l.w.metrics.fenced.Inc()
	}
	return true
}
