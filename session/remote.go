package session

import (
	"context"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
)

// remote handles a request for a job another pod owns (rec).
// HA helper replaces this: ask the takeover policy (proxy / wait / takeover).
// Until then such a request is unavailable.
func (m *Manager) remote(ctx context.Context, rec abi.JobRecord, r SegmentRequest) (SegmentResult, error) {
	return SegmentResult{}, fmt.Errorf("%w: job %s is owned by pod %s (epoch %d)", ErrUnavailable, rec.ID, rec.Owner, rec.Epoch)
}
