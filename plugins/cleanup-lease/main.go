// Command cleanup-lease is the default cleanup rules:
//
//   - never propose a directory that a job with a valid lease references
//     (live_lease), nor a path that is absolute or climbs out with "..";
//   - propose every other directory whose last use (the newer of its mtime
//     and last access) is older than max_age_ms;
//   - with high_water_bytes set and total_bytes above it, also propose the
//     least recently used remaining directories until the total falls under
//     the mark: first those no job references at all, then those referenced
//     only by jobs whose lease has ended.
//
// The host re-checks every proposed path; this plugin needs no capability.
package main

import (
	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

const version = "1.0.0"

type rules struct{}

func (rules) Plan(req abi.PlanRequest) (abi.PlanResponse, error) { return plan(req) }

func init() {
	sdk.RegisterCleanup(abi.Description{Name: "cleanup-lease", Version: version}, rules{})
}

func main() {}
