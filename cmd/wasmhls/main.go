// Command wasmhls is the HLS server and its tools.
//
//	wasmhls serve   [--config config.yaml]      run the server (serve.go)
//	wasmhls probe   FILE                        print what the transcoder sees in FILE as JSON (probe.go)
//	wasmhls plugin  check FILE [--redis URL]    load a plugin as the server would and run its conformance suite (plugin.go)
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  wasmhls serve [--config FILE]            run the HLS server (default config.yaml)
  wasmhls probe FILE                       print media information as JSON
  wasmhls plugin check FILE [--redis URL]  check a plugin: self-description and conformance suite
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(os.Args[2:])
	case "probe":
		err = runProbe(os.Args[2:])
	case "plugin":
		err = runPlugin(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "wasmhls: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wasmhls %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
