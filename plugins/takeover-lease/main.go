// Command takeover-lease is the default takeover policy: take over a job
// whose owner released it or whose lease expired (by the store's clock,
// plus an optional grace period), otherwise proxy to the owner. It never
// takes over a valid lease.
//
// Config (plugins.takeover.config):
//
//	grace_ms:         extra time after expiry before a takeover (default 0)
//	max_jobs_per_pod: when the pod already runs this many jobs it does not
//	                  take over; it proxies to a live owner or answers wait
//	                  (default 0: no cap)
//	wait_ms:          retry_after_ms of a wait answer when nothing better is
//	                  known (default 1000)
package main

import (
	"sync"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

const version = "1.0.0"

// plugin reads its config on first use (the self-test at load is the first
// use, so a bad config fails the load).
type plugin struct {
	once sync.Once
	cfg  config
	err  error
}

func (p *plugin) load() (config, error) {
	p.once.Do(func() {
		p.cfg = defaultConfig()
		if err := sdk.StrictConfig(&p.cfg); err != nil {
			p.err = err
			return
		}
		p.err = p.cfg.validate()
	})
	return p.cfg, p.err
}

func (p *plugin) Decide(req abi.DecideRequest) (abi.DecideResponse, error) {
	cfg, err := p.load()
	if err != nil {
		return abi.DecideResponse{}, err
	}
	return decide(cfg, req)
}

func (p *plugin) SelfTest() error {
	_, err := p.load()
	return err
}

func init() {
	sdk.RegisterTakeover(abi.Description{
		Name:         "takeover-lease",
		Version:      version,
		Capabilities: []string{abi.CapConfig},
	}, &plugin{})
}

func main() {}
