// Command store-null is the built-in session store for a single host: it
// keeps nothing, so every pod owns every job it starts and nothing is ever
// taken over. Semantics (docs/PLUGINS.md "store-null"):
//
//   - create: created=true with the record as given (epoch 1 if 0, state
//     active, lease from the host clock); there is never an existing record.
//   - get: not_found (nothing is kept).
//   - renew: ok, the lease is extended from the host clock.
//   - commit_segment, release, delete: ok (nothing to fence against).
//   - takeover: ok with a fresh record naming the requested owner, epoch 1.
//   - list: no records.
//   - try_lock: acquired (one host, no one to compete with).
//
// It must not be used by two pods sharing a transcode directory: nothing
// would stop them from producing the same job.
package main

import (
	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

// version is this plugin's own version (not the ABI's).
const version = "1.0.0"

func init() {
	sdk.RegisterStore(abi.Description{
		Name:         "store-null",
		Version:      version,
		Capabilities: []string{abi.CapClock},
	}, nullStore{now: sdk.NowMs})
}

func main() {}
