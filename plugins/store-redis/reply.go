package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk/wire"
)

// scriptReply is what every script answers, as a flat array in the order
// of replyFields (scripts.go's reply function writes the same order).
type scriptReply struct {
	Status         string
	Error          string
	NowMs          int64
	Record         *abi.JobRecord // nil unless the script sent one
	LeaseExpiresMs int64
	Acquired       bool
}

// replyField sets one array element: str for strings, num for integers.
type replyField struct {
	name string
	str  func(r *scriptReply, v string)
	num  func(r *scriptReply, v int64)
}

// replyHead is the part every reply has; has_record says whether
// replyRecord follows.
var replyHead = []replyField{
	{name: "status", str: func(r *scriptReply, v string) { r.Status = v }},
	{name: "now_ms", num: func(r *scriptReply, v int64) { r.NowMs = v }},
	{name: "error", str: func(r *scriptReply, v string) { r.Error = v }},
	{name: "lease_expires_ms", num: func(r *scriptReply, v int64) { r.LeaseExpiresMs = v }},
	{name: "acquired", num: func(r *scriptReply, v int64) { r.Acquired = v != 0 }},
	{name: "has_record", num: func(r *scriptReply, v int64) {
		if v != 0 {
			r.Record = new(abi.JobRecord)
		}
	}},
}

var replyRecord = []replyField{
	{name: "record.id", str: func(r *scriptReply, v string) { r.Record.ID = v }},
	{name: "record.item", str: func(r *scriptReply, v string) { r.Record.Item = v }},
	{name: "record.variant", str: func(r *scriptReply, v string) { r.Record.Variant = v }},
	{name: "record.params_hash", str: func(r *scriptReply, v string) { r.Record.ParamsHash = v }},
	{name: "record.owner", str: func(r *scriptReply, v string) { r.Record.Owner = v }},
	{name: "record.owner_url", str: func(r *scriptReply, v string) { r.Record.OwnerURL = v }},
	{name: "record.epoch", num: func(r *scriptReply, v int64) { r.Record.Epoch = v }},
	{name: "record.lease_expires_ms", num: func(r *scriptReply, v int64) { r.Record.LeaseExpiresMs = v }},
	{name: "record.state", str: func(r *scriptReply, v string) { r.Record.State = v }},
	{name: "record.manifest_path", str: func(r *scriptReply, v string) { r.Record.ManifestPath = v }},
	{name: "record.segment_prefix", str: func(r *scriptReply, v string) { r.Record.SegmentPrefix = v }},
	{name: "record.last_completed_segment", num: func(r *scriptReply, v int64) { r.Record.LastCompletedSegment = int(v) }},
	{name: "record.last_durable_offset_ms", num: func(r *scriptReply, v int64) { r.Record.LastDurableOffsetMs = v }},
	{name: "record.last_requested_segment", num: func(r *scriptReply, v int64) { r.Record.LastRequestedSegment = int(v) }},
	{name: "record.updated_ms", num: func(r *scriptReply, v int64) { r.Record.UpdatedMs = v }},
}

func replyFieldAt(r *scriptReply, i int) (replyField, bool) {
	if i < len(replyHead) {
		return replyHead[i], true
	}
	if r.Record == nil || i-len(replyHead) >= len(replyRecord) {
		return replyField{}, false
	}
	return replyRecord[i-len(replyHead)], true
}

// decodeReply decodes a script's reply: by hand when it has the expected
// shape (the usual case), else with encoding/json, which reports what is
// wrong.
func decodeReply(raw json.RawMessage) (scriptReply, error) {
	if r, ok := fastReply(raw); ok {
		return r, nil
	}
	return slowReply(raw)
}

// slowReply is decodeReply through encoding/json.
func slowReply(raw json.RawMessage) (scriptReply, error) {
	var elems []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&elems); err != nil {
		return scriptReply{}, fmt.Errorf("script reply %.120s is not an array: %w", raw, err)
	}
	var r scriptReply
	for i, e := range elems {
		f, ok := replyFieldAt(&r, i)
		if !ok {
			return scriptReply{}, fmt.Errorf("script reply %.120s: unexpected element %d", raw, i)
		}
		switch v := e.(type) {
		case string:
			if f.str == nil {
				return scriptReply{}, fmt.Errorf("script reply: %s is %q, want an integer", f.name, v)
			}
			f.str(&r, v)
		case json.Number:
			n, err := v.Int64()
			if err != nil || f.num == nil {
				return scriptReply{}, fmt.Errorf("script reply: %s is %s, want a string", f.name, v)
			}
			f.num(&r, n)
		default:
			return scriptReply{}, fmt.Errorf("script reply: %s is %v (%T)", f.name, e, e)
		}
	}
	if err := r.complete(len(elems)); err != nil {
		return scriptReply{}, fmt.Errorf("script reply %.120s: %w", raw, err)
	}
	return r, nil
}

// complete checks the element count and gives the record the reply's
// clock (as now_ms of a record read from the store).
func (r *scriptReply) complete(n int) error {
	want := len(replyHead)
	if r.Record != nil {
		want += len(replyRecord)
		r.Record.NowMs = r.NowMs
	}
	if n != want {
		return fmt.Errorf("%d elements, want %d", n, want)
	}
	return nil
}

func fastReply(raw []byte) (scriptReply, bool) {
	var r scriptReply
	rd := wire.NewReader(raw)
	n := rd.Array(func(i int) {
		f, ok := replyFieldAt(&r, i)
		switch {
		case !ok:
			rd.Fail()
		case f.str != nil:
			f.str(&r, rd.String())
		default:
			f.num(&r, rd.Int())
		}
	})
	if !rd.End() || r.complete(n) != nil {
		return scriptReply{}, false
	}
	return r, true
}
