// Command rawfiles serves every file of a directory from memory with a
// bare net/http handler: no authentication, no lookup beyond one map read,
// the bytes written with Content-Length set. http_devices_vs_nginx.sh runs
// it beside hotdeskd and nginx as the floor of any Go server on the
// machine: what net/http itself costs per request. With -pprof it serves
// /debug/pprof on a listener of its own, so the floor can be profiled
// beside the daemon. With -server fasthttp the same bytes are served by
// github.com/valyala/fasthttp instead: the floor of that library, which
// the script measures in the same rounds (issue 17: is any Go server here
// clearly above nginx?).
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

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5094", "address to serve on")
	dir := flag.String("dir", ".", "the files to serve")
	pprofAddr := flag.String("pprof", "", "address serving /debug/pprof (none when empty)")
	server := flag.String("server", "nethttp", "the server library: nethttp or fasthttp")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		go func() { log.Print(http.ListenAndServe(*pprofAddr, mux)) }()
	}
	log.Printf("serving %d files on %s with %s", len(files), *listen, *server)
	if *server == "fasthttp" {
		srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
			f, ok := files[string(c.Path())]
			if !ok {
				c.NotFound()
				return
			}
			c.SetContentType("text/plain")
			c.SetBody(f.body)
		}}
		go func() { <-ctx.Done(); srv.Shutdown() }()
		if err := srv.ListenAndServe(*listen); err != nil {
			log.Fatal(err)
		}
		return
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
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
