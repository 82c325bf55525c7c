// Command dhcpbench runs hotdesk's DHCP server alone, with leases persisted to
// an append-only file written in group-committed batches, for
// dhcp/bench/dhcp_vs_peers.sh (perfdhcp against hotdesk, Kea and dnsmasq).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"hotdesk/dhcp"
)

func main() {
	iface := flag.String("iface", "", "interface to bind (SO_BINDTODEVICE)")
	listen := flag.String("listen", "0.0.0.0:67", "UDP listen address")
	serverID := flag.String("server-id", "", "option 54 (default: from the interface)")
	subnet := flag.String("subnet", "10.66.0.0/16", "subnet")
	rng := flag.String("range", "10.66.1.0,10.66.255.254", "first,last dynamic address")
	boot := flag.String("boot", "10.66.0.1", "option 66")
	leases := flag.String("leases", "/tmp/hotdesk-bench/hotdesk-leases.csv", "lease file (append-only)")
	fsync := flag.Bool("fsync", false, "fsync every batch (Kea's memfile does not)")
	workers := flag.Int("workers", dhcp.DefaultConfig().Workers, "socket reader goroutines")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the run to this file at exit")
	flag.Parse()
	if *memprofile != "" {
		runtime.MemProfileRate = 4096 // the replies are small: sample finely enough to see them
		defer writeHeapProfile(*memprofile)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*iface, *listen, *serverID, *subnet, *rng, *boot, *leases, *fsync, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// writeHeapProfile writes the allocations of the whole run (alloc_objects,
// alloc_space) to path.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dhcpbench: memprofile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpbench: memprofile:", err)
	}
}

func run(iface, listen, serverID, subnet, rng, boot, leasePath string, fsync bool, workers int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := dhcp.DefaultConfig()
	cfg.Mode = dhcp.ModeServer
	cfg.Interface, cfg.Listen, cfg.ServerID = iface, listen, serverID
	cfg.Subnet = subnet
	cfg.Range = strings.Split(rng, ",")
	cfg.LeaseTime = time.Hour
	cfg.BootServer = boot
	cfg.Workers = workers
	store, err := openFileStore(leasePath, fsync)
	if err != nil {
		return err
	}
	defer store.Close()
	conn, err := dhcp.Listen(cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	srv, err := dhcp.New(cfg, dhcp.Deps{Logger: log, Leases: store})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, conn)
}
