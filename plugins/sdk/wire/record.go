package wire

import (
	"strconv"

	"github.com/wasmhls/wasmhls/abi"
)

// ReadRecord reads a JobRecord object. An unknown key fails the reader.
func ReadRecord(r *Reader, rec *abi.JobRecord) {
	r.Object(func(k []byte) {
		switch string(k) {
		case "id":
			rec.ID = r.String()
		case "item":
			rec.Item = r.String()
		case "variant":
			rec.Variant = r.String()
		case "params_hash":
			rec.ParamsHash = r.String()
		case "owner":
			rec.Owner = r.String()
		case "owner_url":
			rec.OwnerURL = r.String()
		case "epoch":
			rec.Epoch = r.Int()
		case "lease_expires_ms":
			rec.LeaseExpiresMs = r.Int()
		case "state":
			rec.State = r.String()
		case "manifest_path":
			rec.ManifestPath = r.String()
		case "segment_prefix":
			rec.SegmentPrefix = r.String()
		case "last_completed_segment":
			rec.LastCompletedSegment = int(r.Int())
		case "last_durable_offset_ms":
			rec.LastDurableOffsetMs = r.Int()
		case "last_requested_segment":
			rec.LastRequestedSegment = int(r.Int())
		case "updated_ms":
			rec.UpdatedMs = r.Int()
		case "now_ms":
			rec.NowMs = r.Int()
		default:
			r.Fail()
		}
	})
}

// AppendRecord appends rec as JSON, as encoding/json would (now_ms is
// omitted when zero) except that HTML characters are not escaped.
func AppendRecord(b []byte, r abi.JobRecord) []byte {
	b = AppendString(append(b, `{"id":`...), r.ID)
	b = AppendString(append(b, `,"item":`...), r.Item)
	b = AppendString(append(b, `,"variant":`...), r.Variant)
	b = AppendString(append(b, `,"params_hash":`...), r.ParamsHash)
	b = AppendString(append(b, `,"owner":`...), r.Owner)
	b = AppendString(append(b, `,"owner_url":`...), r.OwnerURL)
	b = strconv.AppendInt(append(b, `,"epoch":`...), r.Epoch, 10)
	b = strconv.AppendInt(append(b, `,"lease_expires_ms":`...), r.LeaseExpiresMs, 10)
	b = AppendString(append(b, `,"state":`...), r.State)
	b = AppendString(append(b, `,"manifest_path":`...), r.ManifestPath)
	b = AppendString(append(b, `,"segment_prefix":`...), r.SegmentPrefix)
	b = strconv.AppendInt(append(b, `,"last_completed_segment":`...), int64(r.LastCompletedSegment), 10)
	b = strconv.AppendInt(append(b, `,"last_durable_offset_ms":`...), r.LastDurableOffsetMs, 10)
	b = strconv.AppendInt(append(b, `,"last_requested_segment":`...), int64(r.LastRequestedSegment), 10)
	b = strconv.AppendInt(append(b, `,"updated_ms":`...), r.UpdatedMs, 10)
	if r.NowMs != 0 {
		b = strconv.AppendInt(append(b, `,"now_ms":`...), r.NowMs, 10)
	}
	return append(b, '}')
}
