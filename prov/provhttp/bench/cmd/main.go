// Command bench serves hotdesk's provisioning handler on 127.0.0.1:PORT
// over a real store in a temporary directory holding one device, and
// writes that device's rendered <MAC>.cfg to -out for nginx to serve.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/provhttp"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8089", "address to serve on")
	out := flag.String("out", "", "write the rendered <MAC>.cfg here")
	mac := flag.String("mac", "0004f2000001", "the device")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	raw := flag.String("raw", "", "also serve a bare net/http handler writing the same bytes here (the Go ceiling)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "hotdesk-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.DefaultConfig(), dir, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	cfg := provhttp.DefaultConfig()
	cfg.HTTPListen = *listen
	rend, err := render.New(cfg.RenderConfig(5060), nil)
	if err != nil {
		log.Fatal(err)
	}
	files, err := files.New(cfg.FilesConfig(), files.Deps{Store: st, Events: &prov.Events{}, Renderer: rend})
	if err != nil {
		log.Fatal(err)
	}
	h, err := provhttp.New(cfg, provhttp.Deps{Files: files, Accounts: st})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { <-ctx.Done(); srv.Close() }()
	go func() {
		// First fetch enrolls the device; save the bytes for nginx.
		resp, err := http.Get("http://" + ln.Addr().String() + "/" + *mac + ".cfg")
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if *out != "" {
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				log.Fatal(err)
			}
		}
		if *raw != "" {
			go func() {
				log.Print(http.ListenAndServe(*raw, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					w.Write(b)
				})))
			}()
		}
		log.Printf("ready: %d bytes", len(b))
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Print(err)
	}
}
