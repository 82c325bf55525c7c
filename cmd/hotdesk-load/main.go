package main

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

const usage = `usage: hotdesk-load COMMAND [flags]

commands:
  storm     simulated handsets: [DHCP,] boot fetch, device REGISTER, login share, check-sync, logout
  register  REGISTER flood with digest auth for N users (like sipp's)
  fetch     config files over HTTP or TFTP, N fetches, C concurrent
  login     login/logout cycles through the admin API
  calls     INVITE→200→ACK→BYE between two registered accounts through the proxy
  seed      create N users through the admin API (for storm -login-share)

Run "hotdesk-load COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status (0 ok, 1
// the run had errors, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"storm": runStorm, "register": runRegister, "fetch": runFetch,
		"login": runLogin, "calls": runCalls, "seed": runSeed,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
		return 2
	}
	err := f(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, "hotdesk-load:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}
