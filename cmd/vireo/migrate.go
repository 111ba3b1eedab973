package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vireo-vmm/vireo/internal/api/qmp"
	"github.com/vireo-vmm/vireo/internal/migration"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// Live migration: the QMP adapter's migration methods, `vireo run
// --incoming` and `vireo migrate`.

func (m qmpMachine) Migrate(uri string) error { return qmpError(m.ctl.Migrate(uri)) }

func (m qmpMachine) MigrateCancel() error { return qmpError(m.ctl.MigrateCancel()) }

func (m qmpMachine) MigrateIncoming(uri string) error { return qmpError(m.ctl.MigrateIncoming(uri)) }

func (m qmpMachine) MigrationStatus() qmp.Migration {
	in := m.ctl.MigrationInfo()
	r := in.RAM
	return qmp.Migration{
		Status: string(in.Status), Error: in.Error,
		TotalTime: in.TotalTime, SetupTime: in.SetupTime, Downtime: in.Downtime, ExpectedDowntime: in.ExpectedDowntime,
		RAM: qmp.MigrationRAM{
			Transferred: r.Transferred, Remaining: r.Remaining, Total: r.Total, Duplicate: r.Duplicate,
			Normal: r.Normal, NormalBytes: r.NormalBytes, DirtyPagesRate: r.DirtyPagesRate, Mbps: r.Mbps,
			DirtySyncCount: r.DirtySyncCount, DowntimeBytes: r.DowntimeBytes,
		},
	}
}

func (m qmpMachine) MigrationParameters() qmp.MigrationParameters {
	p := m.ctl.MigrationParams()
	return qmp.MigrationParameters{DowntimeLimit: p.DowntimeLimit, MaxBandwidth: p.MaxBandwidth, Verify: p.Verify}
}

func (m qmpMachine) SetMigrationParameters(p qmp.MigrationParameters) error {
	cur := m.ctl.MigrationParams()
	cur.DowntimeLimit, cur.MaxBandwidth, cur.Verify = p.DowntimeLimit, p.MaxBandwidth, p.Verify
	return qmpError(m.ctl.SetMigrationParams(cur))
}

// incomingConfig checks the flags of `vireo run --incoming`: the source
// sends the machine, so the flags that describe one are refused.
func incomingConfig(f *runFlags) error {
	for _, name := range []string{"kernel", "initrd", "cmdline", "cpus", "memory", "cpu-template", "restore"} {
		if f.set[name] {
			return usageError{fmt.Sprintf("--%s cannot be combined with --incoming: the source sends the machine", name)}
		}
	}
	if f.incoming != "defer" {
		if _, err := migration.ParseURI(f.incoming); err != nil {
			return usageError{fmt.Sprintf("--incoming %q: want tcp:HOST:PORT, unix:PATH or defer", f.incoming)}
		}
	}
	return nil
}

// newController builds the VM's controller: a migration target's when
// incoming is set.
func newController(cfg vmm.Config, incoming string) (*vmm.Controller, error) {
	if incoming != "" {
		return vmm.NewIncomingController(cfg, incoming)
	}
	return vmm.NewController(cfg)
}

const migrateUsage = `usage: vireo migrate --qmp unix:PATH|tcp:HOST:PORT [flags] tcp:HOST:PORT|unix:PATH

Migrates the running VM (started with --qmp) to a target started with
'vireo run --incoming URI', showing the progress, then quits the source.
The exit status is 0 once the target runs the VM; on failure the source
keeps running and the reason is printed. Ctrl-C cancels the migration.

flags:
`

// cmdMigrate is `vireo migrate`.
func cmdMigrate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("vireo migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	qmpAddr := fs.String("qmp", "", "the source VM's QMP socket: unix:PATH or tcp:HOST:PORT")
	downtime := fs.Duration("downtime-limit", 0, "longest pause of the VM, e.g. 50ms (default: the VM's setting)")
	bandwidth := fs.String("max-bandwidth", "", "cap in bytes per second for the live passes, with K, M or G suffixes (default: the VM's setting; 0 is no cap)")
	keep := fs.Bool("keep-source", false, "leave the source paused (QEMU's postmigrate) instead of quitting it")
	verify := fs.Bool("verify", false, "have the target check every page against the source's checksum (a longer downtime)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, migrateUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return usageError{err.Error()}
	}
	if *qmpAddr == "" || fs.NArg() != 1 {
		return usageError{"migrate needs --qmp and one target URI"}
	}
	uri := fs.Arg(0)
	if _, err := migration.ParseURI(uri); err != nil {
		return usageError{fmt.Sprintf("target %q: want tcp:HOST:PORT or unix:PATH", uri)}
	}
	params := map[string]any{}
	if *downtime > 0 {
		params["downtime-limit"] = downtime.Milliseconds()
	}
	if *verify {
		params["x-vireo-verify"] = true
	}
	if *bandwidth != "" {
		n, err := parseBandwidth(*bandwidth)
		if err != nil {
			return usageError{fmt.Sprintf("--max-bandwidth %q: %v", *bandwidth, err)}
		}
		params["max-bandwidth"] = n
	}

	c, err := dialQMP(*qmpAddr)
	if err != nil {
		return err
	}
	defer c.close()
	if len(params) > 0 {
		if _, err := c.call("migrate-set-parameters", params); err != nil {
			return err
		}
	}
	if _, err := c.call("migrate", map[string]any{"uri": uri}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p := newProgress(stdout)
	for {
		var st migrateStatus
		raw, err := c.call("query-migrate", nil)
		if err == nil {
			err = json.Unmarshal(raw, &st)
		}
		if err != nil {
			return fmt.Errorf("following the migration: %w", err)
		}
		p.show(st)
		switch st.Status {
		case "completed":
			p.done()
			fmt.Fprintf(stdout, "migrated to %s in %v: downtime %d ms, %d passes, %.1f MB sent\n", uri,
				(time.Duration(st.TotalTime) * time.Millisecond).Round(time.Millisecond), st.Downtime, st.RAM.DirtySyncCount, float64(st.RAM.Transferred)/1e6)
			if *keep {
				return nil
			}
			if _, err := c.call("quit", nil); err != nil {
				return fmt.Errorf("migrated, but quitting the source: %w", err)
			}
			return nil
		case "failed":
			p.done()
			return fmt.Errorf("migration failed: %s (the source keeps running)", strings.TrimPrefix(st.ErrorDesc, "migration: "))
		case "cancelled":
			p.done()
			return errors.New("migration cancelled (the source keeps running)")
		case "":
			p.done()
			return errors.New("the VM reports no migration")
		}
		select {
		case <-ctx.Done():
			stop()
			c.call("migrate_cancel", nil)
			p.done()
			return errors.New("migration cancelled (the source keeps running)")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parseBandwidth parses a byte rate: a number with an optional K, M or G
// (binary) suffix.
func parseBandwidth(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, err
	}
	if !strings.ContainsAny(s, "kKmMgGtT") {
		n >>= 20 // parseSize reads plain numbers as MiB; a rate is in bytes
	}
	return int64(n), nil
}

// migrateStatus is the part of query-migrate the CLI shows.
type migrateStatus struct {
	Status           string `json:"status"`
	TotalTime        int64  `json:"total-time"`
	Downtime         int64  `json:"downtime"`
	ExpectedDowntime int64  `json:"expected-downtime"`
	ErrorDesc        string `json:"error-desc"`
	RAM              struct {
		Transferred    uint64  `json:"transferred"`
		Remaining      uint64  `json:"remaining"`
		Total          uint64  `json:"total"`
		Mbps           float64 `json:"mbps"`
		DirtySyncCount uint64  `json:"dirty-sync-count"`
	} `json:"ram"`
}

// progress draws the migration's progress: a bar redrawn in place on a
// terminal, plain lines otherwise (one per pass, and one a second).
type progress struct {
	w        io.Writer
	tty      bool
	drawn    bool
	lastPass uint64
	lastLine time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(st migrateStatus) {
	if st.Status != "active" || st.RAM.Total == 0 {
		return
	}
	pass := st.RAM.DirtySyncCount + 1
	pct := 100 * float64(st.RAM.Total-min(st.RAM.Remaining, st.RAM.Total)) / float64(st.RAM.Total)
	if pass > 1 {
		pct = 100 // later passes resend what changed: RAM has been copied once
	}
	text := fmt.Sprintf("%5.1f%% pass %d, %.1f MB sent, %.0f MB/s", pct, pass, float64(st.RAM.Transferred)/1e6, st.RAM.Mbps/8)
	if !p.tty {
		if pass != p.lastPass || time.Since(p.lastLine) >= time.Second {
			fmt.Fprintln(p.w, "migrating:", text)
			p.lastPass, p.lastLine = pass, time.Now()
		}
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	fmt.Fprintf(p.w, "\r[%s%s] %s\x1b[K", strings.Repeat("#", fill), strings.Repeat(".", width-fill), text)
	p.drawn = true
}

// done ends the bar's line.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// qmpSession is a QMP client connection for a sequence of commands.
type qmpSession struct {
	conn net.Conn
	dec  *json.Decoder
}

func dialQMP(addr string) (*qmpSession, error) {
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
	c := &qmpSession{conn: conn, dec: json.NewDecoder(bufio.NewReader(conn))}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var greeting map[string]json.RawMessage
	if err := c.dec.Decode(&greeting); err != nil || greeting["QMP"] == nil {
		conn.Close()
		return nil, fmt.Errorf("%s does not speak QMP", addr)
	}
	if _, err := c.call("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// call runs one command and returns its result, skipping events.
func (c *qmpSession) call(cmd string, args any) (json.RawMessage, error) {
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(c.conn).Encode(req); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	for {
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := c.dec.Decode(&resp); err != nil {
			if cmd == "quit" && errors.Is(err, io.EOF) {
				return nil, nil
			}
			return nil, fmt.Errorf("%s: reading the reply: %w", cmd, err)
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

func (c *qmpSession) close() { c.conn.Close() }
