package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
)

// guestCalls counts the guest functions one plugin call runs (wazero
// function listeners; the module is compiled separately for it), for
// finding guest-side work: with the call deadline on, every loop iteration
// in the guest costs a trip out of the compiled code, so a call's time
// follows how much the guest does, and these counts show where.
func guestCalls(w io.Writer, n int, opts host.Options) error {
	counts := map[string]*int64{}
	factory := experimental.FunctionListenerFactoryFunc(func(def api.FunctionDefinition) experimental.FunctionListener {
		c := new(int64)
		counts[def.DebugName()] = c
		return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
			*c++
		})
	})
	ctx := experimental.WithFunctionListenerFactory(context.Background(), factory)
	opts.CacheDir = "" // listeners change the compiled code: never share it
	report := func(what string, f func() error) error {
		for _, c := range counts {
			*c = 0
		}
		t0 := time.Now()
		for range n {
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		type row struct {
			name string
			n    int64
		}
		var rows []row
		var total int64
		for name, c := range counts {
			if *c > 0 {
				rows = append(rows, row{name, *c})
				total += *c
			}
		}
		slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.n, a.n) })
		fmt.Fprintf(w, "%s: %.0f guest function calls per call (%v per call with listeners on)\n", what,
			float64(total)/float64(n), time.Since(t0)/time.Duration(n))
		for _, r := range rows[:min(len(rows), 30)] {
			fmt.Fprintf(w, "  %8.1f  %s\n", float64(r.n)/float64(n), r.name)
		}
		return nil
	}

	p, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-null"}, opts)
	if err != nil {
		return err
	}
	s := host.NewStoreClient(p)
	err = report("store-null renew", func() error {
		_, err := s.Renew(ctx, "job", "pod", 1, 30*time.Second, abi.Progress{LastCompletedSegment: 3, LastRequestedSegment: 5})
		return err
	})
	p.Close(ctx)
	if err != nil || opts.Redis == nil {
		return err
	}
	clear(counts)
	if p, err = host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-redis"}, opts); err != nil {
		return err
	}
	defer p.Close(ctx)
	s = host.NewStoreClient(p)
	if _, _, err := s.Create(ctx, abi.JobRecord{ID: "guestcalls-job", Item: "item", Variant: "720p", Owner: "pod-a",
		OwnerURL: "http://a", LastCompletedSegment: -1, LastRequestedSegment: -1}, time.Hour); err != nil {
		return fmt.Errorf("store-redis create: %w", err)
	}
	return report("store-redis get", func() error { _, err := s.Get(ctx, "guestcalls-job"); return err })
}
