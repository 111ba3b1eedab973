package fcapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// Options configure a Server.
type Options struct {
	// ID is the instance ID GET / reports ("anonymous-instance" if empty,
	// as in Firecracker).
	ID string
	// Version is the VMM version GET / and GET /version report.
	Version string
	// DefaultCmdline is the kernel command line used when PUT /boot-source
	// gives no boot_args.
	DefaultCmdline string
	// Start builds and runs the VM at InstanceStart. Required.
	Start StartFunc
	// Logs, if set, is redirected to the file PUT /logger names.
	Logs *LogSwitch
	// Log receives the server's own messages (slog.Default if nil).
	Log *slog.Logger
	// MaxBody bounds request bodies (DefaultMaxBody if zero).
	MaxBody int64
	// MetricsInterval is how often metrics are written while the VM runs
	// (DefaultMetricsInterval if zero; negative disables).
	MetricsInterval time.Duration
	// Now reads the clock for metrics timestamps (time.Now if nil).
	Now func() time.Time
}

// Defaults, Firecracker's where it has one.
const (
	DefaultMaxBody         = 51200
	DefaultMetricsInterval = 60 * time.Second
	defaultInstanceID      = "anonymous-instance"
)

// Server is the API of one VM. Requests are applied one at a time, as
// Firecracker's VMM thread does: before InstanceStart they edit the
// configuration, after it they act on the running VM.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	// initialLog is where Options.Logs pointed before any PUT /logger.
	initialLog slog.Handler
	// openSink opens log and metrics destinations (replaced in tests).
	openSink func(path string) (*os.File, error)

	mu       sync.Mutex // serializes actions; guards everything below
	res      resources
	vm       Instance // nil until InstanceStart succeeds
	logFile  *os.File
	closed   bool
	stopTick chan struct{}

	httpMu sync.Mutex
	https  []*http.Server
}

// New returns a server waiting to be configured.
func New(opts Options) *Server {
	if opts.ID == "" {
		opts.ID = defaultInstanceID
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MetricsInterval == 0 {
		opts.MetricsInterval = DefaultMetricsInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log, metrics: newMetrics(), res: newResources(), openSink: openSink}
	if opts.Logs != nil {
		s.initialLog = opts.Logs.cur.Load().h
	}
	return s
}

// Handle parses and applies one request. ServeHTTP calls it once the body
// is read; it is also the whole API for tests and the fuzzer.
func (s *Server) Handle(method, path string, body []byte) Response {
	ep, a, f := parseRequest(method, path, body)
	s.metrics.count(ep)
	var out any
	if f == nil {
		out, f = s.apply(a)
	}
	if f != nil {
		s.metrics.fail(ep)
		s.log.Info("api request refused", "method", sanitize(method), "path", sanitize(path), "status", f.status, "fault", f.msg)
		return faultResponse(f)
	}
	s.log.Debug("api request", "method", method, "path", path)
	return okResponse(out)
}

// apply runs one action under the server lock.
func (s *Server) apply(a action) (any, *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := a.(unsupported); ok {
		return nil, notSupported(u.what)
	}
	if s.vm == nil {
		return s.preboot(a)
	}
	return s.runtime(a)
}

// preboot applies an action before InstanceStart.
func (s *Server) preboot(a action) (any, *fault) {
	switch a := a.(type) {
	case getInstanceInfo:
		return s.instanceInfo(), nil
	case getMachineConfig:
		return s.res.machine, nil
	case getVersion:
		return versionInfo{s.opts.Version}, nil
	case getFullConfig:
		return s.res.full(), nil
	case getBalloon:
		return s.balloonConfig()
	case updateMachineConfig:
		return nil, s.res.updateMachine(a.update)
	case putBootSource:
		return nil, s.res.setBootSource(a.cfg)
	case putDrive:
		return nil, s.res.putDrive(a.cfg)
	case putNetwork:
		return nil, s.res.putNetwork(a.cfg)
	case putVsock:
		return nil, s.res.setVsock(a.cfg)
	case putBalloon:
		return nil, s.res.setBalloon(a.cfg)
	case putLogger:
		return nil, s.setLogger(a.cfg)
	case putMetrics:
		return nil, s.setMetrics(a.cfg)
	case startInstance:
		return nil, s.start()
	case loadSnapshot:
		return nil, s.loadSnapshot(a) // snapshot.go
	}
	// Runtime-only: pause, resume, Ctrl+Alt+Del, FlushMetrics, balloon
	// statistics and updates, drive and network updates.
	return nil, badRequest(msgNotSupportedPreBoot)
}

// runtime applies an action after InstanceStart.
func (s *Server) runtime(a action) (any, *fault) {
	switch a := a.(type) {
	case getInstanceInfo:
		return s.instanceInfo(), nil
	case getMachineConfig:
		return s.res.machine, nil
	case getVersion:
		return versionInfo{s.opts.Version}, nil
	case getFullConfig:
		return s.res.full(), nil
	case getBalloon:
		return s.balloonConfig()
	case getBalloonStats:
		return s.balloonStats()
	case patchBalloon:
		return nil, s.patchBalloon(a.cfg)
	case patchBalloonStats:
		return nil, s.patchBalloonStats(a.cfg)
	case patchDrive:
		return nil, badRequest("Drive config error: Unable to patch the block device: no drive %q is attached.", a.cfg.DriveID)
	case patchNetwork:
		return nil, badRequest("Network config error: Unable to update the net device: no network interface %q is attached.", a.cfg.IfaceID)
	case pauseVM:
		if s.vm.State() == vmm.StatePaused {
			return nil, nil
		}
		return nil, vmmError(s.vm.Pause())
	case resumeVM:
		if s.vm.State() == vmm.StateRunning {
			return nil, nil
		}
		return nil, vmmError(s.vm.Resume())
	case sendCtrlAltDel:
		return nil, vmmError(s.vm.SendCtrlAltDel())
	case flushMetrics:
		return nil, vmmError(s.flushMetricsLocked())
	case createSnapshot:
		return nil, s.createSnapshot(a) // snapshot.go
	}
	// Preboot-only: configuration and InstanceStart.
	return nil, badRequest(msgNotSupportedPostBoot)
}

func vmmError(err error) *fault {
	if err == nil {
		return nil
	}
	return badRequest("Internal Vmm error: %s", err)
}

func (s *Server) instanceInfo() instanceInfo {
	st := stateNotStarted
	if s.vm != nil {
		st = stateRunning
		if s.vm.State() == vmm.StatePaused {
			st = statePaused
		}
	}
	return instanceInfo{ID: s.opts.ID, State: st, VMMVersion: s.opts.Version, AppName: appName}
}

// StartInstance starts the VM, as PUT /actions InstanceStart does.
func (s *Server) StartInstance() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm != nil {
		return fmt.Errorf("%w: %s", ErrStart, msgNotSupportedPostBoot)
	}
	if f := s.start(); f != nil {
		return fmt.Errorf("%w: %s", ErrStart, strings.TrimPrefix(f.msg, "Start microvm error: "))
	}
	return nil
}

// start builds the VM from the configuration and starts the periodic
// metrics writer.
func (s *Server) start() *fault {
	if s.closed {
		return badRequest("Start microvm error: the API server is shutting down")
	}
	cfg, f := s.res.vmmConfig(s.opts.DefaultCmdline)
	if f != nil {
		return f
	}
	if s.opts.Start == nil {
		return badRequest("Start microvm error: no VMM is attached to this API server")
	}
	vm, err := s.opts.Start(cfg)
	if err != nil {
		return badRequest("Start microvm error: %s", err)
	}
	s.vm = vm
	s.startMetricsTicker()
	return nil
}

// startMetricsTicker starts the periodic metrics writer of a started VM.
func (s *Server) startMetricsTicker() {
	if s.opts.MetricsInterval > 0 {
		s.stopTick = make(chan struct{})
		go s.metricsTicker(s.opts.MetricsInterval, s.stopTick)
	}
}

// metricsTicker writes a metrics line every interval until stop closes.
func (s *Server) metricsTicker(interval time.Duration, stop chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			err := s.flushMetricsLocked()
			s.mu.Unlock()
			if err != nil {
				s.log.Warn("metrics", "err", err)
			}
		}
	}
}

func (s *Server) flushMetricsLocked() error {
	var exits *ExitCounts
	var devices []section
	if s.vm != nil {
		e := s.vm.ExitCounts()
		exits = &e
		devices = deviceTotals(s.vm.Metrics())
	}
	return s.metrics.flush(s.opts.Now(), exits, devices)
}

// setLogger applies PUT /logger: later log records go to the new file.
func (s *Server) setLogger(b loggerPut) *fault {
	c, f := applyLogger(s.res.logger, b)
	if f != nil {
		return f
	}
	file, err := s.openSink(c.LogPath)
	if err != nil {
		return describeSinkError("Logger", err)
	}
	if s.opts.Logs != nil {
		s.opts.Logs.Set(newLogHandler(file, c))
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
	s.logFile = file
	s.res.logger = &c
	return nil
}

// setMetrics applies PUT /metrics.
func (s *Server) setMetrics(c metricsConfig) *fault {
	if s.metrics.configured() {
		return badRequest("Metrics error: %s", msgMetricsTwice)
	}
	file, err := s.openSink(c.MetricsPath)
	if err != nil {
		return describeSinkError("Metrics", err)
	}
	if f := s.metrics.setFile(file); f != nil {
		file.Close()
		return f
	}
	s.res.metrics = &c
	return nil
}

func (s *Server) balloonConfig() (any, *fault) {
	if s.res.balloon == nil {
		return nil, badRequest("Balloon config error: %s", msgNoBalloon)
	}
	return *s.res.balloon, nil
}

// balloonStats answers GET /balloon/statistics from the device
// (balloon.go has the body).
func (s *Server) balloonStats() (any, *fault) {
	switch {
	case s.res.balloon == nil:
		return nil, badRequest("Balloon config error: %s", msgNoBalloon)
	case s.res.balloon.StatsPollingIntervalS == 0:
		return nil, badRequest("Balloon config error: %s", msgStatsDisabled)
	}
	info, err := s.vm.Balloon()
	if err != nil {
		return nil, balloonError(err)
	}
	return newBalloonStats(info), nil
}

func (s *Server) patchBalloon(p balloonPatch) *fault {
	if s.res.balloon == nil {
		return badRequest("Balloon config error: %s", msgNoBalloon)
	}
	if uint64(p.AmountMib) > s.res.machine.MemSizeMib {
		return badRequest("Balloon config error: %s", msgBalloonTooLarge)
	}
	if err := s.vm.SetBalloonSize(uint64(p.AmountMib) << 20); err != nil {
		return balloonError(err)
	}
	s.res.balloon.AmountMib = p.AmountMib
	return nil
}

func (s *Server) patchBalloonStats(p balloonStatsPatch) *fault {
	if s.res.balloon == nil {
		return badRequest("Balloon config error: %s", msgNoBalloon)
	}
	if (s.res.balloon.StatsPollingIntervalS == 0) != (p.StatsPollingIntervalS == 0) {
		return badRequest("Balloon config error: %s", msgStatsToggle)
	}
	if p.StatsPollingIntervalS != s.res.balloon.StatsPollingIntervalS {
		if err := s.vm.SetBalloonStatsInterval(time.Duration(p.StatsPollingIntervalS) * time.Second); err != nil {
			return balloonError(err)
		}
	}
	s.res.balloon.StatsPollingIntervalS = p.StatsPollingIntervalS
	return nil
}

// Close stops serving (removing the socket files), writes a last metrics
// line if the VM ran, and closes the log and metrics files. Later
// requests are refused.
func (s *Server) Close() error {
	// Mark closed before collecting the HTTP servers: Serve registers its
	// server first and checks closed second, so none is missed.
	s.mu.Lock()
	wasClosed := s.closed
	s.closed = true
	s.mu.Unlock()

	s.httpMu.Lock()
	servers := s.https
	s.https = nil
	s.httpMu.Unlock()
	var errs []error
	for _, hs := range servers {
		if err := hs.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if wasClosed {
		return errors.Join(errs...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopTick != nil {
		close(s.stopTick)
	}
	if s.vm != nil {
		if err := s.flushMetricsLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.metrics.close(); err != nil {
		errs = append(errs, err)
	}
	if s.logFile != nil {
		// Later records go back where they went before PUT /logger.
		if s.opts.Logs != nil {
			s.opts.Logs.Set(s.initialLog)
		}
		if err := s.logFile.Close(); err != nil {
			errs = append(errs, err)
		}
		s.logFile = nil
	}
	return errors.Join(errs...)
}
