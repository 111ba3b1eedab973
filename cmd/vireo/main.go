// Command vireo runs a KVM virtual machine.
//
//	vireo run [flags]      boot a VM (the default guest when no --kernel is given)
//	vireo host-check       report what this host's KVM offers
//	vireo version          print the version
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// usageError is a command-line mistake: one line, then a hint, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "snapshot":
		err = cmdSnapshot(args[1:], stdout)
	case "migrate":
		err = cmdMigrate(args[1:], stdout)
	case "host-check":
		err = cmdHostCheck(args[1:], stdout)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "vireo %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
		return 0
	default:
		err = usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "vireo: %s (see 'vireo %s --help')\n", ue.msg, helpTopic(args))
		return 2
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "vireo: %s\n", oneLine(err))
	return 1
}

func helpTopic(args []string) string {
	if len(args) > 0 && (args[0] == "run" || args[0] == "host-check" || args[0] == "snapshot" || args[0] == "migrate") {
		return args[0]
	}
	return "help"
}

// oneLine keeps an error to one line for people at the CLI.
func oneLine(err error) string {
	s := err.Error()
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

const topUsage = `usage: vireo <command> [flags]

commands:
  run          boot a virtual machine (the default guest when --kernel is omitted)
  snapshot     save a running VM: snapshot create --qmp unix:PATH DIR
  migrate      move a running VM to another vireo: migrate --qmp unix:PATH tcp:HOST:PORT
  host-check   report what this host's /dev/kvm offers
  version      print the version

Run 'vireo run --help' for the flags of run.
`
