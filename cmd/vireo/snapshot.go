package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// cmdSnapshot is `vireo snapshot create --qmp unix:PATH DIR`: it asks a
// running vireo, through its QMP socket, to save itself into DIR.
func cmdSnapshot(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"usage: vireo snapshot create --qmp unix:PATH|tcp:HOST:PORT DIR"}
	}
	fs := flag.NewFlagSet("vireo snapshot create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	qmpAddr := fs.String("qmp", "", "the running VM's QMP socket: unix:PATH or tcp:HOST:PORT")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: vireo snapshot create --qmp unix:PATH|tcp:HOST:PORT DIR\n\nSaves the running VM (started with --qmp) into DIR; restore it with 'vireo run --restore DIR'.")
			return errHelp
		}
		return usageError{err.Error()}
	}
	if *qmpAddr == "" || fs.NArg() != 1 {
		return usageError{"snapshot create needs --qmp and one directory"}
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := qmpCall(*qmpAddr, "x-vireo-snapshot-create", map[string]any{"dir": dir}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot saved to %s in %v\n", dir, time.Since(start).Round(time.Millisecond))
	return nil
}

// qmpCall connects to a QMP socket, negotiates, runs one command and
// returns its result.
func qmpCall(addr, command string, arguments any) (json.RawMessage, error) {
	network, address, ok := strings.Cut(addr, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return nil, usageError{fmt.Sprintf("--qmp %q: want unix:PATH or tcp:HOST:PORT", addr)}
	}
	if i := strings.IndexByte(address, ','); i >= 0 {
		address = address[:i]
	}
	conn, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting to QMP at %s: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	dec := json.NewDecoder(bufio.NewReader(conn))
	var greeting map[string]json.RawMessage
	if err := dec.Decode(&greeting); err != nil || greeting["QMP"] == nil {
		return nil, fmt.Errorf("%s does not speak QMP", addr)
	}
	call := func(cmd string, args any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		if err := json.NewEncoder(conn).Encode(req); err != nil {
			return nil, err
		}
		for {
			var resp struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Class string `json:"class"`
					Desc  string `json:"desc"`
				} `json:"error"`
				Event string `json:"event"`
			}
			if err := dec.Decode(&resp); err != nil {
				return nil, fmt.Errorf("reading the QMP reply: %w", err)
			}
			if resp.Event != "" {
				continue
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("%s: %s", cmd, resp.Error.Desc)
			}
			return resp.Return, nil
		}
	}
	if _, err := call("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return call(command, arguments)
}
