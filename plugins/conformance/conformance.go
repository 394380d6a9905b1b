// Package conformance is the behaviour every wasmhls plugin of a kind must
// show, run against the host's typed clients (session.Store,
// session.TakeoverPolicy, session.CleanupRules) so that it checks a plugin
// exactly as the server uses it. `wasmhls plugin check` and the project's
// tests run it; docs/PLUGINS.md lists the cases.
//
// Store cases need a store that keeps records (store-redis or your own).
// A store that keeps nothing (store-null) is checked with
// Options.Stateless, which runs only the cases marked as applying to it:
// every operation succeeds, get finds nothing, try_lock acquires.
//
// Cases that involve lease expiry wait for the store's own clock (the
// now_ms it reports) with a bounded deadline; they never sleep a fixed time
// and assume it passed.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/session"
)

// Options tune a run. Zero values take the defaults shown.
type Options struct {
	// Stateless runs the store cases that apply to a store that keeps
	// nothing (store-null) instead of the full suite.
	Stateless bool
	// Lease is the lease of records that must stay valid during a case (30s).
	Lease time.Duration
	// ShortLease is the lease of records a case waits to expire (300ms).
	ShortLease time.Duration
	// ExpiryDeadline bounds the wait for a short lease to expire by the
	// store's clock (15s).
	ExpiryDeadline time.Duration
	// Racers is how many goroutines race one takeover (16).
	Racers int
	// IDPrefix starts every job id and lock name, so that runs sharing a
	// store do not meet (default: "conformance-" and random hex).
	IDPrefix string
}

func (o Options) withDefaults() Options {
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.ShortLease <= 0 {
		o.ShortLease = 300 * time.Millisecond
	}
	if o.ExpiryDeadline <= 0 {
		o.ExpiryDeadline = 15 * time.Second
	}
	if o.Racers <= 0 {
		o.Racers = 16
	}
	if o.IDPrefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.IDPrefix = "conformance-" + hex.EncodeToString(b[:]) + "-"
	}
	return o
}

// Case is one named check.
type Case struct {
	Name string
	Doc  string
	// Stateless: the case applies to a store that keeps nothing; Full: to a
	// store that keeps records. A store case may apply to both.
	Stateless, Full bool

	store    func(ctx context.Context, s session.Store, o Options, id string) error
	takeover func(ctx context.Context, p session.TakeoverPolicy) error
	cleanup  func(ctx context.Context, r session.CleanupRules) error
}

// Result is the outcome of one case; Err is nil when it passed.
type Result struct {
	Name string
	Err  error
}

// Cases lists the cases of a kind (abi.KindStore, KindTakeover, KindCleanup).
func Cases(kind string) []Case {
	switch kind {
	case abi.KindStore:
		return storeCases()
	case abi.KindTakeover:
		return takeoverCases()
	case abi.KindCleanup:
		return cleanupCases()
	}
	return nil
}

// Run runs the store suite (or its stateless subset) against s.
func Run(ctx context.Context, s session.Store, opts Options) []Result {
	opts = opts.withDefaults()
	var out []Result
	for _, c := range selectStore(opts) {
		out = append(out, Result{Name: c.Name, Err: runStoreCase(ctx, c, s, opts)})
	}
	return out
}

// RunTakeover runs the takeover policy suite against p.
func RunTakeover(ctx context.Context, p session.TakeoverPolicy) []Result {
	var out []Result
	for _, c := range takeoverCases() {
		out = append(out, Result{Name: c.Name, Err: c.takeover(ctx, p)})
	}
	return out
}

// RunCleanup runs the cleanup rules suite against r.
func RunCleanup(ctx context.Context, r session.CleanupRules) []Result {
	var out []Result
	for _, c := range cleanupCases() {
		out = append(out, Result{Name: c.Name, Err: c.cleanup(ctx, r)})
	}
	return out
}

// RunT runs the suite for target (a session.Store, TakeoverPolicy or
// CleanupRules) with one subtest per case.
func RunT(t *testing.T, target any, opts Options) {
	t.Helper()
	ctx := t.Context()
	switch v := target.(type) {
	case session.Store:
		opts = opts.withDefaults()
		for _, c := range selectStore(opts) {
			t.Run(c.Name, func(t *testing.T) {
				if err := runStoreCase(ctx, c, v, opts); err != nil {
					t.Fatal(err)
				}
			})
		}
	case session.TakeoverPolicy:
		for _, c := range takeoverCases() {
			t.Run(c.Name, func(t *testing.T) {
				if err := c.takeover(ctx, v); err != nil {
					t.Fatal(err)
				}
			})
		}
	case session.CleanupRules:
		for _, c := range cleanupCases() {
			t.Run(c.Name, func(t *testing.T) {
				if err := c.cleanup(ctx, v); err != nil {
					t.Fatal(err)
				}
			})
		}
	default:
		t.Fatalf("conformance: %T is not a session.Store, TakeoverPolicy or CleanupRules", target)
	}
}

func selectStore(o Options) []Case {
	var out []Case
	for _, c := range storeCases() {
		if (o.Stateless && c.Stateless) || (!o.Stateless && c.Full) {
			out = append(out, c)
		}
	}
	return out
}

func runStoreCase(ctx context.Context, c Case, s session.Store, o Options) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.store(ctx, s, o, o.IDPrefix+c.Name)
}

// errorf is fmt.Errorf; named so that checks read as assertions.
var errorf = fmt.Errorf

// wantErr checks that err wraps want.
func wantErr(what string, err, want error) error {
	if !errors.Is(err, want) {
		return errorf("%s: got error %v, want %v", what, err, want)
	}
	return nil
}
