package main

import (
	"encoding/json"
	"errors"
	"os"

	"github.com/wasmhls/wasmhls/transcode"
)

// runProbe prints what the transcoder sees in one media file, as indented JSON.
func runProbe(args []string) error {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		return errors.New("usage: wasmhls probe FILE")
	}
	info, err := transcode.Probe(args[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}
