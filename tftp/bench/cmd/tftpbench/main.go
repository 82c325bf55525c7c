// Command tftpbench serves a directory with hotdesk's TFTP server, for
// bench/tftp_vs_dnsmasq.sh. It is a benchmark harness, not a product.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"hotdesk/tftp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6971", "UDP address to listen on")
	root := flag.String("root", ".", "directory to serve")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until stopped")
	procs := flag.Int("procs", 0, "GOMAXPROCS, as the daemon's max_procs (0: every core)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*addr, *root, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "tftpbench:", err)
		os.Exit(1)
	}
}

func run(addr, root, cpuprofile string) error {
	fsys, err := tftp.NewDirFS(root)
	if err != nil {
		return err
	}
	defer fsys.Close()
	// Every request comes from 127.0.0.1: the per-client reflection limits
	// would measure themselves, not the server.
	cfg := tftp.DefaultConfig()
	cfg.RequestRatePerClient, cfg.RequestBurstPerClient = 100000, 100000
	cfg.MaxUnacknowledgedPerClient = cfg.MaxTransfersPerClient
	srv, err := tftp.New(cfg, tftp.Deps{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FS:     fsys,
	})
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return srv.Serve(ctx, conn)
}
