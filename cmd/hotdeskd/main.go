// Command hotdeskd is the hotdesk phone-system appliance daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"hotdesk/daemon"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `hotdeskd — hot-desking phone-system appliance daemon

Usage:
  hotdeskd [serve] [-c FILE] [--demo]   run the daemon
  hotdeskd check-config [-c FILE]        validate a config and reach its store, print the effective one (secrets masked)
  hotdeskd user import [-c FILE] [--dry-run] FILE.csv   bulk-create users (over the admin API)
  hotdeskd backup [-c FILE] FILE         online, consistent copy of the store
  hotdeskd restore [-c FILE] FILE        replace the store with a backup (daemon stopped)
  hotdeskd status [-c FILE]              what is listening, counts (over the admin API)

The admin-API commands find the daemon from admin.listen (or --admin URL) and
authenticate with $HOTDESK_TOKEN (an API token) or $HOTDESK_PASSWORD (--user, default admin).
  hotdeskd version
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdout, stderr)
	case "check-config":
		err = checkConfig(ctx, args, stdout)
	case "backup", "restore":
		err = backupRestore(ctx, cmd, args, stderr)
	case "user":
		err = userImport(ctx, args, stdout, stderr)
	case "status":
		err = status(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hotdeskd", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hotdeskd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "hotdeskd:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default "+daemon.DefaultConfigPath+" when it exists)")
	demo := fs.Bool("demo", false, "seed a demo site and use unprivileged ports")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, used, err := daemon.LoadFile(*path)
	if err != nil {
		return err
	}
	lv := new(slog.LevelVar)
	logger := daemon.NewLogger(stderr, cfg.Log, lv)
	logger.Info("starting hotdeskd", "version", version, "config", used, "demo", *demo)
	daemon.ApplyMemoryLimit(cfg, logger)
	daemon.ApplyMaxProcs(cfg, logger)
	daemon.ApplyProfileRates(cfg)
	return daemon.Run(ctx, cfg, daemon.Options{
		Demo: *demo, ConfigPath: used, Version: version, Banner: stdout, LevelVar: lv,
	}, logger)
}

func checkConfig(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, used, err := daemon.LoadFile(*path)
	if err != nil {
		return err
	}
	out, err := cfg.Masked()
	if err != nil {
		return err
	}
	if used == "" {
		used = "built-in defaults"
	}
	// The store is checked too: a node that cannot reach its database
	// would start and then fail.
	st, err := daemon.CheckStore(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# %s: OK\n# store: %s\n%s", used, st, out)
	if z := cfg.SRVZone(); z != "" {
		fmt.Fprintf(stdout, "\n%s", z)
	}
	return nil
}

func backupRestore(ctx context.Context, cmd string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%s needs exactly one FILE", cmd)
	}
	cfg, _, err := daemon.LoadFile(*path)
	if err != nil {
		return err
	}
	logger := daemon.NewLogger(stderr, cfg.Log, new(slog.LevelVar))
	if cmd == "backup" {
		return daemon.Backup(ctx, cfg, fs.Arg(0), logger)
	}
	return daemon.Restore(ctx, cfg, fs.Arg(0))
}
