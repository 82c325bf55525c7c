// Command rawfiles serves every file of a directory from memory with a
// bare net/http handler: no authentication, no lookup beyond one map read,
// the bytes written with Content-Length set. http_devices_vs_nginx.sh runs
// it beside hotdeskd and nginx as the floor of any Go server on the
// machine: what net/http itself costs per request. With -pprof it serves
// /debug/pprof on a listener of its own, so the floor can be profiled
// beside the daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5094", "address to serve on")
	dir := flag.String("dir", ".", "the files to serve")
	pprofAddr := flag.String("pprof", "", "address serving /debug/pprof (none when empty)")
	flag.Parse()
	ents, err := os.ReadDir(*dir)
	if err != nil {
		log.Fatal(err)
	}
	type file struct {
		body   []byte
		length []string
	}
	files := make(map[string]file, len(ents))
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(*dir, e.Name()))
		if err != nil {
			log.Fatal(err)
		}
		files["/"+e.Name()] = file{b, []string{strconv.Itoa(len(b))}}
	}
	ctype := []string{"text/plain"}
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Content-Type"], h["Content-Length"] = ctype, f.length
		w.Write(f.body)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		go func() { log.Print(http.ListenAndServe(*pprofAddr, mux)) }()
	}
	log.Printf("serving %d files on %s", len(files), *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
