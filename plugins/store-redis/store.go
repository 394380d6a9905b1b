package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

// conn is what the store needs from Redis: the sdk's redis capability in
// the plugin, go-redis in native tests of the scripts.
type conn interface {
	// eval runs a script and returns its reply as JSON (scripts answer
	// arrays of strings and integers).
	eval(script string, keys []string, args ...any) (json.RawMessage, error)
	// do runs a command and returns its reply as JSON (nil: a nil reply).
	do(args ...any) (json.RawMessage, error)
}

type config struct {
	KeyPrefix   string `json:"key_prefix"`
	RetentionMs int64  `json:"retention_ms"`
	// ListBatch bounds how many index entries list reads per round trip.
	ListBatch int `json:"list_batch"`
}

func defaultConfig() config {
	return config{KeyPrefix: "wasmhls", RetentionMs: 3_600_000, ListBatch: 100}
}

func (c config) validate() error {
	switch {
	case c.KeyPrefix == "":
		return errors.New("key_prefix must not be empty")
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		return fmt.Errorf("key_prefix %q must not contain { or } (the store adds the hash tag)", c.KeyPrefix)
	case c.RetentionMs < 1000:
		return fmt.Errorf("retention_ms must be >= 1000, got %d", c.RetentionMs)
	case c.ListBatch < 1:
		return fmt.Errorf("list_batch must be >= 1, got %d", c.ListBatch)
	}
	return nil
}

// redisStore implements sdk.Store with one Lua script per operation.
type redisStore struct {
	cfg config
	c   conn
}

var _ sdk.Store = (*redisStore)(nil)

// jobKey is {prefix:id}: the whole key is the hash tag, so every key of one
// job (there is one today) shares a Cluster slot.
func (s *redisStore) jobKey(id string) string { return "{" + s.cfg.KeyPrefix + ":" + id + "}" }

// indexKey is the sorted set of job ids that list walks (never KEYS/SCAN
// over the keyspace). It lives in its own slot, so it is maintained beside
// the job scripts rather than inside them; list prunes ids whose record
// has expired.
func (s *redisStore) indexKey() string { return "{" + s.cfg.KeyPrefix + "}:jobs" }

func (s *redisStore) lockKey(name string) string {
	return "{" + s.cfg.KeyPrefix + ":lock:" + name + "}"
}

func (s *redisStore) run(op, script, id string, args ...any) (scriptReply, error) {
	raw, err := s.c.eval(script, []string{s.jobKey(id)}, args...)
	if err != nil {
		return scriptReply{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	r, err := decodeReply(raw)
	if err != nil {
		return scriptReply{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return r, nil
}

// statusErr maps a script's non-ok status onto the envelope status.
func statusErr(op, id string, r scriptReply) error {
	msg := fmt.Sprintf("%s %s", op, id)
	if r.Error != "" {
		msg += ": " + r.Error
	}
	switch r.Status {
	case abi.StatusLost, abi.StatusNotFound, abi.StatusConflict:
		return sdk.StatusError{Status: r.Status, Msg: msg}
	}
	return fmt.Errorf("%s: unexpected script status %q", msg, r.Status)
}

// progressJSON is json.Marshal(p) without reflection (renew runs for
// every job every few seconds).
func progressJSON(p abi.Progress) string {
	b := make([]byte, 0, 96)
	b = strconv.AppendInt(append(b, `{"last_completed_segment":`...), int64(p.LastCompletedSegment), 10)
	b = strconv.AppendInt(append(b, `,"last_requested_segment":`...), int64(p.LastRequestedSegment), 10)
	b = strconv.AppendInt(append(b, `,"last_durable_offset_ms":`...), p.LastDurableOffsetMs, 10)
	return string(append(b, '}'))
}

func checkID(op, id string) error {
	if id == "" {
		return fmt.Errorf("%s: id is empty", op)
	}
	return nil
}

func checkLease(op string, ms int64) error {
	if ms <= 0 {
		return fmt.Errorf("%s: lease_ms must be > 0, got %d", op, ms)
	}
	return nil
}

func (s *redisStore) Create(req abi.CreateRequest) (abi.CreateResponse, error) {
	id := req.Record.ID
	if err := checkID(abi.OpCreate, id); err != nil {
		return abi.CreateResponse{}, err
	}
	if err := checkLease(abi.OpCreate, req.LeaseMs); err != nil {
		return abi.CreateResponse{}, err
	}
	rec := req.Record
	rec.NowMs = 0
	b, err := json.Marshal(rec)
	if err != nil {
		return abi.CreateResponse{}, fmt.Errorf("create %s: encode record: %w", id, err)
	}
	r, err := s.run(abi.OpCreate, scriptCreate, id, string(b), req.LeaseMs, s.cfg.RetentionMs)
	if err != nil {
		return abi.CreateResponse{}, err
	}
	if r.Record == nil || (r.Status != abi.StatusOK && r.Status != "exists") {
		return abi.CreateResponse{}, statusErr(abi.OpCreate, id, r)
	}
	// Indexed on every create, new or existing, so a create retried after a
	// failed ZADD still lists the job. NX keeps the first score.
	if _, err := s.c.do("ZADD", s.indexKey(), "NX", r.NowMs, id); err != nil {
		return abi.CreateResponse{}, fmt.Errorf("create %s: index: %w", id, err)
	}
	return abi.CreateResponse{Created: r.Status == abi.StatusOK, Record: *r.Record}, nil
}

func (s *redisStore) Get(req abi.GetRequest) (abi.GetResponse, error) {
	if err := checkID(abi.OpGet, req.ID); err != nil {
		return abi.GetResponse{}, err
	}
	r, err := s.run(abi.OpGet, scriptGet, req.ID)
	if err != nil {
		return abi.GetResponse{}, err
	}
	if r.Status != abi.StatusOK || r.Record == nil {
		return abi.GetResponse{}, statusErr(abi.OpGet, req.ID, r)
	}
	return abi.GetResponse{Record: *r.Record}, nil
}

func (s *redisStore) Renew(req abi.RenewRequest) (abi.RenewResponse, error) {
	if err := checkID(abi.OpRenew, req.ID); err != nil {
		return abi.RenewResponse{}, err
	}
	if err := checkLease(abi.OpRenew, req.LeaseMs); err != nil {
		return abi.RenewResponse{}, err
	}
	r, err := s.run(abi.OpRenew, scriptRenew, req.ID, req.Owner, req.Epoch, req.LeaseMs, s.cfg.RetentionMs, progressJSON(req.Progress))
	if err != nil {
		return abi.RenewResponse{}, err
	}
	if r.Status != abi.StatusOK {
		return abi.RenewResponse{}, statusErr(abi.OpRenew, req.ID, r)
	}
	return abi.RenewResponse{LeaseExpiresMs: r.LeaseExpiresMs}, nil
}

func (s *redisStore) CommitSegment(req abi.CommitSegmentRequest) error {
	if err := checkID(abi.OpCommitSegment, req.ID); err != nil {
		return err
	}
	if req.Segment < 0 {
		return fmt.Errorf("commit_segment %s: segment must be >= 0, got %d", req.ID, req.Segment)
	}
	r, err := s.run(abi.OpCommitSegment, scriptCommit, req.ID, req.Owner, req.Epoch, req.Segment, req.OffsetMs)
	if err != nil {
		return err
	}
	if r.Status != abi.StatusOK {
		return statusErr(abi.OpCommitSegment, req.ID, r)
	}
	return nil
}

func (s *redisStore) Takeover(req abi.TakeoverRequest) (abi.TakeoverResponse, error) {
	if err := checkID(abi.OpTakeover, req.ID); err != nil {
		return abi.TakeoverResponse{}, err
	}
	if err := checkLease(abi.OpTakeover, req.LeaseMs); err != nil {
		return abi.TakeoverResponse{}, err
	}
	if req.Owner == "" {
		return abi.TakeoverResponse{}, fmt.Errorf("takeover %s: owner is empty", req.ID)
	}
	r, err := s.run(abi.OpTakeover, scriptTakeover, req.ID, req.Owner, req.OwnerURL, req.LeaseMs, s.cfg.RetentionMs)
	if err != nil {
		return abi.TakeoverResponse{}, err
	}
	var resp abi.TakeoverResponse
	if r.Record != nil {
		resp.Record = *r.Record
	}
	if r.Status != abi.StatusOK {
		// conflict carries the current record as the result.
		return resp, statusErr(abi.OpTakeover, req.ID, r)
	}
	return resp, nil
}

func (s *redisStore) Release(req abi.ReleaseRequest) error {
	if err := checkID(abi.OpRelease, req.ID); err != nil {
		return err
	}
	r, err := s.run(abi.OpRelease, scriptRelease, req.ID, req.Owner, req.Epoch, s.cfg.RetentionMs)
	if err != nil {
		return err
	}
	if r.Status != abi.StatusOK {
		return statusErr(abi.OpRelease, req.ID, r)
	}
	return nil
}

func (s *redisStore) Delete(req abi.DeleteRequest) error {
	if err := checkID(abi.OpDelete, req.ID); err != nil {
		return err
	}
	r, err := s.run(abi.OpDelete, scriptDelete, req.ID, req.Owner, req.Epoch)
	if err != nil {
		return err
	}
	if r.Status != abi.StatusOK {
		return statusErr(abi.OpDelete, req.ID, r)
	}
	if _, err := s.c.do("ZREM", s.indexKey(), req.ID); err != nil {
		// The record is gone; list prunes the stale index entry later.
		sdk.Logf(slog.LevelWarn, "delete %s: unindex: %v", req.ID, err)
	}
	return nil
}

// List walks the index in batches, reads each record with the get script
// (so now_ms is Redis time) and drops index entries whose record expired.
func (s *redisStore) List(req abi.ListRequest) (abi.ListResponse, error) {
	out := abi.ListResponse{Records: []abi.JobRecord{}}
	for start := 0; ; start += s.cfg.ListBatch {
		raw, err := s.c.do("ZRANGE", s.indexKey(), start, start+s.cfg.ListBatch-1)
		if err != nil {
			return abi.ListResponse{}, fmt.Errorf("list: read index: %w", err)
		}
		var ids []string
		if raw != nil {
			if err := json.Unmarshal(raw, &ids); err != nil {
				return abi.ListResponse{}, fmt.Errorf("list: decode index %.80s: %w", raw, err)
			}
		}
		var gone []any
		for _, id := range ids {
			r, err := s.run(abi.OpList, scriptGet, id)
			if err != nil {
				return abi.ListResponse{}, err
			}
			out.NowMs = max(out.NowMs, r.NowMs)
			if r.Status == abi.StatusNotFound {
				gone = append(gone, id)
				continue
			}
			if r.Record == nil || !match(req, *r.Record) {
				continue
			}
			out.Records = append(out.Records, *r.Record)
			if req.Limit > 0 && len(out.Records) >= req.Limit {
				return out, nil
			}
		}
		if len(gone) > 0 {
			if _, err := s.c.do(append([]any{"ZREM", s.indexKey()}, gone...)...); err != nil {
				return abi.ListResponse{}, fmt.Errorf("list: prune index: %w", err)
			}
			// The removed entries shifted the ranks after them.
			start -= len(gone)
		}
		if len(ids) < s.cfg.ListBatch {
			break
		}
	}
	if out.NowMs == 0 {
		now, err := s.redisNowMs()
		if err != nil {
			return abi.ListResponse{}, fmt.Errorf("list: %w", err)
		}
		out.NowMs = now
	}
	return out, nil
}

func match(f abi.ListRequest, r abi.JobRecord) bool {
	return (f.Item == "" || f.Item == r.Item) && (f.Owner == "" || f.Owner == r.Owner)
}

func (s *redisStore) redisNowMs() (int64, error) {
	raw, err := s.c.do("TIME")
	if err != nil {
		return 0, fmt.Errorf("redis TIME: %w", err)
	}
	var t []string
	if err := json.Unmarshal(raw, &t); err != nil || len(t) != 2 {
		return 0, fmt.Errorf("redis TIME: unexpected reply %.80s", raw)
	}
	var sec, usec int64
	if _, err := fmt.Sscan(t[0], &sec); err != nil {
		return 0, fmt.Errorf("redis TIME seconds %q: %w", t[0], err)
	}
	if _, err := fmt.Sscan(t[1], &usec); err != nil {
		return 0, fmt.Errorf("redis TIME microseconds %q: %w", t[1], err)
	}
	return sec*1000 + usec/1000, nil
}

func (s *redisStore) TryLock(req abi.TryLockRequest) (abi.TryLockResponse, error) {
	switch {
	case req.Name == "" || req.Owner == "":
		return abi.TryLockResponse{}, errors.New("try_lock: name and owner must not be empty")
	case req.TTLMs <= 0:
		return abi.TryLockResponse{}, fmt.Errorf("try_lock %s: ttl_ms must be > 0, got %d", req.Name, req.TTLMs)
	}
	raw, err := s.c.eval(scriptTryLock, []string{s.lockKey(req.Name)}, req.Owner, req.TTLMs)
	if err != nil {
		return abi.TryLockResponse{}, fmt.Errorf("try_lock %s: %w", req.Name, err)
	}
	r, err := decodeReply(raw)
	if err != nil {
		return abi.TryLockResponse{}, fmt.Errorf("try_lock %s: %w", req.Name, err)
	}
	return abi.TryLockResponse{Acquired: r.Acquired}, nil
}

// SelfTest checks that Redis answers TIME through the capability, and
// loads every script so that the first job after a load or reload does not
// pay a NOSCRIPT round trip (bench/REPORT.md measured it in the
// time to first segment).
func (s *redisStore) SelfTest() error {
	if _, err := s.redisNowMs(); err != nil {
		return fmt.Errorf("self test: %w", err)
	}
	for _, src := range allScripts {
		if _, err := s.c.do("SCRIPT", "LOAD", src); err != nil {
			return fmt.Errorf("self test: load script: %w", err)
		}
	}
	return nil
}
