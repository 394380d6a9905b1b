package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/plugins/builtin"
)

// readModule returns the module bytes of a slot's path (a file or
// builtin:NAME) and their sha256, refusing a pinned file whose hash differs.
func readModule(slot config.PluginSlot) ([]byte, string, error) {
	var (
		b   []byte
		err error
	)
	if name, ok := strings.CutPrefix(slot.Path, builtin.Prefix); ok {
		b, err = builtin.Open(name)
	} else if slot.Path == "" {
		err = fmt.Errorf("empty plugin path")
	} else {
		b, err = os.ReadFile(slot.Path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("load plugin %s: %w", slot.Path, err)
	}
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	if want := strings.ToLower(strings.TrimSpace(slot.SHA256)); want != "" && want != got {
		return nil, "", fmt.Errorf("load plugin %s: sha256 is %s, the configuration pins %s", slot.Path, got, want)
	}
	return b, got, nil
}

// grantedCaps is what a slot may use: log, clock and config always; redis
// for builtin:store-redis and wherever the slot's capabilities list says so.
func grantedCaps(slot config.PluginSlot) map[string]bool {
	g := map[string]bool{abi.CapLog: true, abi.CapClock: true, abi.CapConfig: true}
	if slot.Path == builtin.Prefix+"store-redis" {
		g[abi.CapRedis] = true
	}
	for _, c := range slot.Capabilities {
		g[c] = true
	}
	return g
}

// hostFuncCap maps each host function to the capability that grants it.
var hostFuncCap = map[string]string{
	abi.FuncLog:    abi.CapLog,
	abi.FuncNowMs:  abi.CapClock,
	abi.FuncConfig: abi.CapConfig,
	abi.FuncRedis:  abi.CapRedis,
}
