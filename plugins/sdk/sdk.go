// Package sdk is the guest-side kit for writing wasmhls plugins in Go
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared). It hides the ABI of package
// abi: a plugin implements Store, TakeoverPolicy or CleanupRules and calls one
// Register function from an init function (a reactor module never runs main).
// The kit exports wasmhls_abi_version, wasmhls_describe, wasmhls_malloc,
// wasmhls_free and wasmhls_call, decodes requests, dispatches them, and
// encodes the Envelope. docs/PLUGINS.md is the reference.
//
// The API builds on every platform so that a plugin's logic can be unit
// tested natively; only the ABI glue (exports_wasip1.go, host_wasip1.go) is
// wasip1-specific. Natively, Log goes to slog, NowMs is the local clock and
// Config reports that no host is present.
package sdk

import (
	"errors"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
)

// Store is a session store plugin: one method per store operation of
// abi (DESIGN.md "The lease protocol"). Return a StatusError to answer with
// a status other than ok (lost, not_found, conflict). With conflict the
// response returned beside the error is sent as the envelope's result
// (takeover's conflict carries the current record that way); other
// statuses carry no result. Any other error is status "error".
type Store interface {
	Create(abi.CreateRequest) (abi.CreateResponse, error)
	Get(abi.GetRequest) (abi.GetResponse, error)
	Renew(abi.RenewRequest) (abi.RenewResponse, error)
	CommitSegment(abi.CommitSegmentRequest) error
	Takeover(abi.TakeoverRequest) (abi.TakeoverResponse, error)
	Release(abi.ReleaseRequest) error
	Delete(abi.DeleteRequest) error
	List(abi.ListRequest) (abi.ListResponse, error)
	TryLock(abi.TryLockRequest) (abi.TryLockResponse, error)
	// SelfTest is run by the host at load and at every reload, before the
	// plugin is put in service: check configuration and reachability.
	SelfTest() error
}

// TakeoverPolicy decides what a pod does with a request for a job it does
// not own (abi.OpDecide).
type TakeoverPolicy interface {
	Decide(abi.DecideRequest) (abi.DecideResponse, error)
}

// CleanupRules proposes segment directories to delete (abi.OpPlan).
type CleanupRules interface {
	Plan(abi.PlanRequest) (abi.PlanResponse, error)
}

// SelfTester is optionally implemented by a TakeoverPolicy or CleanupRules to
// take part in the load-time self test (a Store always does).
type SelfTester interface {
	SelfTest() error
}

// StatusError makes an operation answer with an envelope status other than
// ok, e.g. StatusError{Status: abi.StatusLost, Msg: "epoch 3 is stale"}.
type StatusError struct {
	Status string // one of abi.Status*
	Msg    string
}

func (e StatusError) Error() string {
	if e.Msg == "" {
		return e.Status
	}
	return e.Status + ": " + e.Msg
}

// Lost, NotFound and Conflict build the StatusErrors a store needs most.
func Lost(format string, a ...any) error {
	return StatusError{Status: abi.StatusLost, Msg: fmt.Sprintf(format, a...)}
}

func NotFound(format string, a ...any) error {
	return StatusError{Status: abi.StatusNotFound, Msg: fmt.Sprintf(format, a...)}
}

func Conflict(format string, a ...any) error {
	return StatusError{Status: abi.StatusConflict, Msg: fmt.Sprintf(format, a...)}
}

// registration is the one plugin this module provides.
type registration struct {
	desc     abi.Description
	store    Store
	takeover TakeoverPolicy
	cleanup  CleanupRules
}

// registered is the kit's registry: set once from the plugin's init.
var registered *registration

// RegisterStore makes s the plugin's implementation. desc.Kind and desc.ABI
// are filled in; call it exactly once, from an init function.
func RegisterStore(desc abi.Description, s Store) {
	register(desc, abi.KindStore, &registration{store: s})
}

// RegisterTakeover makes p the plugin's takeover policy.
func RegisterTakeover(desc abi.Description, p TakeoverPolicy) {
	register(desc, abi.KindTakeover, &registration{takeover: p})
}

// RegisterCleanup makes r the plugin's cleanup rules.
func RegisterCleanup(desc abi.Description, r CleanupRules) {
	register(desc, abi.KindCleanup, &registration{cleanup: r})
}

func register(desc abi.Description, kind string, r *registration) {
	if registered != nil {
		// A programming error in the plugin: the instance fails to
		// initialise and the host refuses it at load with this message.
		panic(fmt.Sprintf("sdk: plugin %q registered twice", desc.Name))
	}
	if desc.Kind != "" && desc.Kind != kind {
		panic(fmt.Sprintf("sdk: plugin %q describes kind %q but registers a %s", desc.Name, desc.Kind, kind))
	}
	desc.Kind = kind
	desc.ABI = abi.Version
	if desc.Capabilities == nil {
		desc.Capabilities = []string{}
	}
	r.desc = desc
	registered = r
}

var errNotRegistered = errors.New("sdk: no plugin registered (call sdk.RegisterStore, RegisterTakeover or RegisterCleanup from init)")
