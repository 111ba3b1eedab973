package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main runs a benchmark program called prog. Parse reads the
// command-line arguments: flag.ErrHelp ends the program quietly, any
// other error with status 2. Run then gets the options and the arguments
// under a context that ends on SIGINT, SIGTERM or SIGHUP; its error ends
// the program with status 1.
func Main[O any](prog string, parse func(args []string, stderr io.Writer) (O, error), run func(ctx context.Context, o O, args []string) error) {
	args := os.Args[1:]
	o, err := parse(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err = run(ctx, o, args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}

// Progress prints one progress line on stderr.
func Progress(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
