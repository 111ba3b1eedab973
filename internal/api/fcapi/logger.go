package fcapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
)

// LogSwitch is a slog.Handler whose destination can be replaced while
// loggers derived from it are in use: PUT /logger sends Vireo's logs to
// the file it names. Handlers from WithAttrs and WithGroup follow the
// switch too.
type LogSwitch struct {
	cur  *atomic.Pointer[handlerRef]
	with []func(slog.Handler) slog.Handler
}

type handlerRef struct{ h slog.Handler }

// NewLogSwitch returns a switch that forwards to h until Set.
func NewLogSwitch(h slog.Handler) *LogSwitch {
	s := &LogSwitch{cur: new(atomic.Pointer[handlerRef])}
	s.cur.Store(&handlerRef{h})
	return s
}

// Set makes h the destination of every logger built on the switch.
func (s *LogSwitch) Set(h slog.Handler) { s.cur.Store(&handlerRef{h}) }

func (s *LogSwitch) handler() slog.Handler {
	h := s.cur.Load().h
	for _, f := range s.with {
		h = f(h)
	}
	return h
}

// Enabled implements slog.Handler.
func (s *LogSwitch) Enabled(ctx context.Context, l slog.Level) bool {
	return s.cur.Load().h.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (s *LogSwitch) Handle(ctx context.Context, r slog.Record) error {
	return s.handler().Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (s *LogSwitch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

// WithGroup implements slog.Handler.
func (s *LogSwitch) WithGroup(name string) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *LogSwitch) derive(f func(slog.Handler) slog.Handler) *LogSwitch {
	with := make([]func(slog.Handler) slog.Handler, len(s.with), len(s.with)+1)
	copy(with, s.with)
	return &LogSwitch{cur: s.cur, with: append(with, f)}
}

// logLevels maps Firecracker's level names, matched case-insensitively.
var logLevels = map[string]slog.Level{
	"off":     slog.LevelError + 1000,
	"error":   slog.LevelError,
	"warning": slog.LevelWarn,
	"warn":    slog.LevelWarn,
	"info":    slog.LevelInfo,
	"debug":   slog.LevelDebug,
	"trace":   slog.LevelDebug - 4,
}

// Firecracker's logger defaults.
const defaultLogLevel = "Warning"

// applyLogger merges a PUT /logger body into the current configuration.
func applyLogger(cur *loggerConfig, b loggerPut) (loggerConfig, *fault) {
	c := loggerConfig{Level: defaultLogLevel}
	if cur != nil {
		c = *cur
	}
	if b.LogPath != nil {
		c.LogPath = *b.LogPath
	}
	if b.Level != nil {
		if _, ok := logLevels[strings.ToLower(*b.Level)]; !ok {
			return c, bodyError(unknownVariant(*b.Level, "Off", "Error", "Warning", "Info", "Debug", "Trace"))
		}
		c.Level = *b.Level
	}
	if b.ShowLevel != nil {
		c.ShowLevel = *b.ShowLevel
	}
	if b.ShowLogOrigin != nil {
		c.ShowLogOrigin = *b.ShowLogOrigin
	}
	if c.LogPath == "" {
		return c, badRequest("Logger error: no log_path given")
	}
	return c, nil
}

// openSink opens a log or metrics destination for appending: a regular
// file, created if missing, or a named pipe. It opens read-write and
// non-blocking, so a pipe nobody reads yet neither fails nor blocks.
func openSink(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, openError(path, err)
	}
	return f, nil
}

// newLogHandler formats Vireo's logs for a PUT /logger destination.
func newLogHandler(w io.Writer, c loggerConfig) slog.Handler {
	opts := &slog.HandlerOptions{
		Level:     logLevels[strings.ToLower(c.Level)],
		AddSource: c.ShowLogOrigin,
	}
	if !c.ShowLevel {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.NewTextHandler(w, opts)
}

// describeSinkError is the fault for a destination that cannot be opened.
func describeSinkError(what string, err error) *fault {
	return badRequest("%s error: %s", what, fmt.Sprint(err))
}
