// Command bench serves hotdesk's provisioning handler over a real store in
// a temporary directory holding one device, through the front end the
// daemon's phone listeners use (provhttp.NewFastServer, fasthttp), and
// writes that device's rendered <MAC>.cfg to -out for nginx to serve. With
// -netlisten the same handler is also served by net/http (ServeHTTP): a
// reference, what the harness measured before the daemon moved to fasthttp.
// With -pprof it serves /debug/pprof/profile, so the handler can be
// profiled during a run.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/provhttp"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8089", "address to serve on (fasthttp, as the daemon)")
	netListen := flag.String("netlisten", "", "also serve the handler with net/http here (a reference; none when empty)")
	out := flag.String("out", "", "write the rendered <MAC>.cfg here")
	mac := flag.String("mac", "0004f2000001", "the device")
	pprofAddr := flag.String("pprof", "", "address serving /debug/pprof/profile (none when empty)")
	flag.Parse()
	if err := run(*listen, *netListen, *out, *mac, *pprofAddr); err != nil {
		log.Fatal(err)
	}
}

func run(listen, netListen, out, mac, pprofAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "hotdesk-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.DefaultConfig(), dir, nil, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := provhttp.DefaultConfig()
	cfg.HTTPListen = listen
	rend, err := render.New(cfg.RenderConfig(5060), nil)
	if err != nil {
		return err
	}
	fs, err := files.New(cfg.FilesConfig(), files.Deps{Store: st, Events: &prov.Events{}, Renderer: rend})
	if err != nil {
		return err
	}
	h, err := provhttp.New(cfg, provhttp.Deps{Files: fs, Accounts: st})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fast := provhttp.NewFastServer(h, nil)
	go func() { <-ctx.Done(); _ = fast.Shutdown() }()
	if netListen != "" {
		nln, err := net.Listen("tcp", netListen)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h}
		go func() { <-ctx.Done(); srv.Close() }()
		go func() {
			if err := srv.Serve(nln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Print(err)
			}
		}()
	}
	if pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		go func() { log.Print(http.ListenAndServe(pprofAddr, mux)) }()
	}
	go func() {
		// The first fetch enrolls the device; the bytes are saved for nginx.
		resp, err := http.Get("http://" + ln.Addr().String() + "/" + mac + ".cfg")
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if out != "" {
			if err := os.WriteFile(out, b, 0o644); err != nil {
				log.Fatal(err)
			}
		}
		log.Printf("ready: %d bytes", len(b))
	}()
	return fast.Serve(ln)
}
