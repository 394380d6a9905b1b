// Package abi is the wire contract between the wasmhls plugin host (host/)
// and plugins (plugins/sdk and any other language): ABI version, export
// names, the JSON envelope, and the request/response types of every
// operation. It is plain Go with no build tags so that the host (linux) and
// the guest kit (wasip1) share one definition. docs/PLUGINS.md is the
// human-readable reference; a change here is an ABI change.
package abi

import "encoding/json"

// Version is the ABI version this host speaks. A plugin exports it from
// wasmhls_abi_version; the host refuses any other value.
const Version = 1

// Exports every plugin must provide (besides _initialize, run once per instance).
const (
	ExportABIVersion = "wasmhls_abi_version" // () -> i32
	ExportDescribe   = "wasmhls_describe"    // () -> i64 packed ptr<<32|len of a Description JSON
	ExportMalloc     = "wasmhls_malloc"      // (size i32) -> ptr i32
	ExportFree       = "wasmhls_free"        // (ptr i32) -> ()
	// ExportCall dispatches one operation: (op_ptr, op_len, req_ptr, req_len i32) -> i64 packed
	// ptr<<32|len of an Envelope JSON in guest memory. The host frees the response
	// with wasmhls_free after copying it out.
	ExportCall = "wasmhls_call"
)

// Host module name and host function names (capabilities). Every host
// function that returns data writes it into a guest-supplied buffer
// (out_ptr, out_cap) and returns the length needed; when that length is larger
// than out_cap nothing was written and the guest retries with a bigger buffer.
// Negative return values are errors (see HostErr*).
const (
	HostModule = "wasmhls"

	// capability "log": log(level i32, msg_ptr, msg_len i32)
	FuncLog = "log"
	// capability "clock": now_ms() -> i64 (host wall clock, unix ms)
	FuncNowMs = "now_ms"
	// capability "config": config(out_ptr, out_cap i32) -> i32 len of the plugin's config JSON
	FuncConfig = "config"
	// capability "redis": redis(req_ptr, req_len, out_ptr, out_cap i32) -> i32;
	// req is a RedisRequest JSON, out is a RedisResponse JSON. The host caches the
	// last response per instance so a retry with a bigger buffer does not re-run
	// the command.
	FuncRedis = "redis"
)

// Capability names a plugin may ask for in its Description.
const (
	CapLog    = "log"
	CapClock  = "clock"
	CapConfig = "config"
	CapRedis  = "redis"
)

// Host function error codes (negative i32 results).
const (
	HostErrTooLarge = -1 // request larger than the host accepts
	HostErrFailed   = -2 // the call failed; for redis the RedisResponse carries the error
)

// Plugin kinds, one per slot.
const (
	KindStore    = "store"
	KindTakeover = "takeover"
	KindCleanup  = "cleanup"
)

// Description is what wasmhls_describe returns.
type Description struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Version      string   `json:"version"`
	ABI          int      `json:"abi"`
	Capabilities []string `json:"capabilities"`
}

// Envelope statuses.
const (
	StatusOK       = "ok"
	StatusError    = "error"     // the operation failed; Error says why
	StatusLost     = "lost"      // fenced: owner or epoch no longer match
	StatusNotFound = "not_found" // no such record
	StatusConflict = "conflict"  // takeover refused (lease valid) / create found an existing record
	StatusBadOp    = "bad_op"    // unknown operation name
)

// Envelope wraps every response. Unknown fields are ignored on both sides.
type Envelope struct {
	Status string          `json:"status"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// RedisRequest is what a guest sends through the redis capability: either a
// plain command (Args) or a script (Script with Keys and Args, run with
// EVALSHA and loaded on NOSCRIPT by the host).
type RedisRequest struct {
	Args   []any    `json:"args,omitempty"`
	Script string   `json:"script,omitempty"`
	Keys   []string `json:"keys,omitempty"`
}

// RedisResponse: Nil is true for a redis nil reply; Value is the reply
// decoded to JSON (strings, integers, arrays, nulls).
type RedisResponse struct {
	Value any    `json:"value,omitempty"`
	Nil   bool   `json:"nil,omitempty"`
	Error string `json:"error,omitempty"`
}

// ---- store operations ----

const (
	OpCreate        = "create"
	OpGet           = "get"
	OpRenew         = "renew"
	OpCommitSegment = "commit_segment"
	OpTakeover      = "takeover"
	OpRelease       = "release"
	OpDelete        = "delete"
	OpList          = "list"
	OpTryLock       = "try_lock"
	OpSelfTest      = "self_test" // every kind: a cheap check run at load and reload
)

// Job states.
const (
	StateActive   = "active"
	StateReleased = "released"
)

// JobRecord is one (play session, variant) transcode job as the store keeps it.
// Times are unix milliseconds of the store's clock (Redis TIME for store-redis).
type JobRecord struct {
	ID                   string `json:"id"`
	Item                 string `json:"item"`
	Variant              string `json:"variant"`
	ParamsHash           string `json:"params_hash"`
	Owner                string `json:"owner"`
	OwnerURL             string `json:"owner_url"`
	Epoch                int64  `json:"epoch"`
	LeaseExpiresMs       int64  `json:"lease_expires_ms"`
	State                string `json:"state"`
	ManifestPath         string `json:"manifest_path"`
	SegmentPrefix        string `json:"segment_prefix"`
	LastCompletedSegment int    `json:"last_completed_segment"` // -1 when none
	LastDurableOffsetMs  int64  `json:"last_durable_offset_ms"`
	LastRequestedSegment int    `json:"last_requested_segment"` // -1 when none
	UpdatedMs            int64  `json:"updated_ms"`
	// NowMs is the store's clock when the record was read (not stored), so a
	// caller can judge expiry without trusting its own clock.
	NowMs int64 `json:"now_ms,omitempty"`
}

// Progress is carried by renew.
type Progress struct {
	LastCompletedSegment int   `json:"last_completed_segment"`
	LastRequestedSegment int   `json:"last_requested_segment"`
	LastDurableOffsetMs  int64 `json:"last_durable_offset_ms"`
}

type CreateRequest struct {
	Record  JobRecord `json:"record"`
	LeaseMs int64     `json:"lease_ms"`
}

// CreateResponse: Created is false when a record already existed; Record is
// then the existing one (status ok either way).
type CreateResponse struct {
	Created bool      `json:"created"`
	Record  JobRecord `json:"record"`
}

type GetRequest struct {
	ID string `json:"id"`
}

// GetResponse is returned with status ok; status not_found when absent.
type GetResponse struct {
	Record JobRecord `json:"record"`
}

type RenewRequest struct {
	ID       string   `json:"id"`
	Owner    string   `json:"owner"`
	Epoch    int64    `json:"epoch"`
	LeaseMs  int64    `json:"lease_ms"`
	Progress Progress `json:"progress"`
}

// RenewResponse: status ok with the new expiry, or status lost.
type RenewResponse struct {
	LeaseExpiresMs int64 `json:"lease_expires_ms"`
}

type CommitSegmentRequest struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Epoch    int64  `json:"epoch"`
	Segment  int    `json:"segment"`
	OffsetMs int64  `json:"offset_ms"`
}

type TakeoverRequest struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	OwnerURL string `json:"owner_url"`
	LeaseMs  int64  `json:"lease_ms"`
}

// TakeoverResponse: status ok with the record after takeover (epoch
// incremented), status conflict with the current record when the lease is
// still valid, not_found when there is no record.
type TakeoverResponse struct {
	Record JobRecord `json:"record"`
}

type ReleaseRequest struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	Epoch int64  `json:"epoch"`
}

type DeleteRequest = ReleaseRequest

type ListRequest struct {
	Item  string `json:"item,omitempty"`  // only jobs of this item
	Owner string `json:"owner,omitempty"` // only jobs of this owner
	Limit int    `json:"limit,omitempty"` // 0: no limit
}

type ListResponse struct {
	Records []JobRecord `json:"records"`
	NowMs   int64       `json:"now_ms"`
}

type TryLockRequest struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	TTLMs int64  `json:"ttl_ms"`
}

type TryLockResponse struct {
	Acquired bool `json:"acquired"`
}

// ---- takeover policy ----

const OpDecide = "decide"

// Takeover decisions.
const (
	DecideProxy    = "proxy"
	DecideWait     = "wait"
	DecideTakeover = "takeover"
)

// DecideRequest is what the host asks the takeover policy when a request
// lands on a pod that does not own the job and the file does not exist.
type DecideRequest struct {
	Record           JobRecord `json:"record"`
	NowMs            int64     `json:"now_ms"` // the store's clock
	Pod              string    `json:"pod"`
	PodJobs          int       `json:"pod_jobs"` // jobs this pod runs now
	RequestedSegment int       `json:"requested_segment"`
}

type DecideResponse struct {
	Decision     string `json:"decision"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"` // for wait
	Reason       string `json:"reason,omitempty"`
}

// ---- cleanup rules ----

const OpPlan = "plan"

// CleanupDir describes one segment directory under transcode_dir.
type CleanupDir struct {
	Path       string   `json:"path"` // relative to transcode_dir, slash-separated
	Bytes      int64    `json:"bytes"`
	ModTimeMs  int64    `json:"mod_time_ms"` // newest file's mtime
	AccessMs   int64    `json:"access_ms"`   // last time a segment was served or written, best known
	Referenced []string `json:"referenced"`  // job ids whose records reference this dir
	LiveLease  bool     `json:"live_lease"`  // a referencing job has a valid lease
}

type PlanRequest struct {
	NowMs          int64        `json:"now_ms"`
	MaxAgeMs       int64        `json:"max_age_ms"`
	HighWaterBytes int64        `json:"high_water_bytes"` // 0: no limit
	TotalBytes     int64        `json:"total_bytes"`
	Dirs           []CleanupDir `json:"dirs"`
}

type PlanResponse struct {
	Delete []string `json:"delete"` // relative paths proposed for deletion
	Reason string   `json:"reason,omitempty"`
}
