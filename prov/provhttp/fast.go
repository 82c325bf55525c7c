package provhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// Timeouts of the phones' listeners, on either front end: a request's
// header within 10 s, its body (an upload) within a minute, the answer
// (a firmware image at LAN speed) within 10 minutes, an idle keep-alive
// connection 2 minutes.
const (
	HeaderTimeout = 10 * time.Second
	BodyTimeout   = time.Minute
	WriteTimeout  = 10 * time.Minute
	IdleTimeout   = 2 * time.Minute
)

// NewFastServer is the phones' provisioning listener on fasthttp (issue 17:
// net/http's own cost per request kept a Go server below nginx). The hot
// path, a GET or HEAD of a device's, user's or static file, is served by
// serveFast; everything else (uploads, the phone pages, Extension Mobility,
// odd request lines) goes through fasthttpadaptor to ServeHTTP, unchanged. logger gets
// fasthttp's own messages (broken connections, bad requests) at debug and
// recovered panics as errors.
func NewFastServer(h *Handler, logger *slog.Logger) *fasthttp.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "provhttp")
	slow := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The adaptor's request context is fasthttp's RequestCtx, recycled
		// once the request is answered: nothing may keep it.
		ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, r.Context().Value(http.LocalAddrContextKey))
		h.ServeHTTP(streamingWriter{w}, r.WithContext(ctx))
	}))
	return &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			defer func() {
				// fasthttp recovers nothing: a panic would end the daemon.
				if p := recover(); p != nil {
					logger.Error("provisioning handler panic", "err", fmt.Errorf("%v", p), "path", string(c.Path()))
					c.Error("internal error", http.StatusInternalServerError)
				}
			}()
			if h.serveFast(c) {
				return
			}
			c.SetUserValue(http.LocalAddrContextKey, c.LocalAddr())
			slow(c)
		},
		ErrorHandler: h.fastRequestError,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: BodyTimeout}
		},
		Name:                  "",
		NoDefaultServerHeader: true,
		ReadTimeout:           HeaderTimeout,
		WriteTimeout:          WriteTimeout,
		IdleTimeout:           IdleTimeout,
		// Uploads are read whole before the handler (the adaptor buffers
		// them); a larger one is answered by fastRequestError.
		MaxRequestBodySize: int(h.cfg.MaxUploadBytes),
		ReadBufferSize:     16 << 10,
		// A phone fetches a few files and then idles on its keep-alive
		// connection; without this each such connection kept its 16 KiB
		// reader, writer and body buffers: ~30 MB of the storm's ~117 MB live heap
		// (issue 17). With it they go back to fasthttp's pools between
		// requests, for one extra 1-byte read per request.
		ReduceMemoryUsage: true,
		CloseOnShutdown:   true,
		Logger:            fastLogger{logger},
	}
}

// serveFast answers a GET or HEAD of a device's or user's file or of a
// static file, as ServeHTTP does; false (nothing done yet) leaves the
// request to it. It runs for every phone's fetch: what it allocates is
// counted (TestDigestFetchFastAllocations).
func (h *Handler) serveFast(c *fasthttp.RequestCtx) bool {
	head := c.IsHead()
	if !head && !c.IsGet() {
		return false
	}
	raw := c.Request.Header.RequestURI()
	if !plainPath(raw) {
		return false
	}
	// The path as sent (net/http's Path and RequestURI alike for a plain
	// path) and the User-Agent, in one string: fasthttp reuses its bytes.
	ua := c.UserAgent()
	var buf [512]byte
	both := string(append(append(buf[:0], raw...), ua...))
	path, agent := both[:len(raw)], both[len(raw):]
	name, ok := strings.CutPrefix(path, h.cfg.PathPrefix+"/")
	if !ok || strings.HasPrefix(name, PhonePagesPath) || strings.HasPrefix(name, files.EMPath+"/") {
		return false
	}
	kind, user := files.KindAndUserOf(name)
	if kind == files.KindOther {
		return false
	}
	req := files.Request{Proto: files.ProtoHTTP, Path: name, UserAgent: agent,
		Remote: localAddrOf(c.RemoteAddr()), Local: localAddrOf(c.LocalAddr())}
	if c.IsTLS() {
		req.Proto = files.ProtoHTTPS
	}
	// The answer's status and body bytes for the metrics; an error answer
	// is written through a fastAnswer, made only then.
	status, sent := http.StatusOK, int64(0)
	answered := func(w *fastAnswer) { status, sent = w.code(), w.n }
	streamed := false // a static file's body: counted when fasthttp is done with it
	defer func() {
		if !streamed {
			h.files.Observe(req.Proto, kind, status, sent)
		}
	}()
	src := req.Remote.Addr().Unmap()
	if h.limit.blocked(src) {
		w := &fastAnswer{c: c}
		w.error("too many failed requests", http.StatusTooManyRequests)
		answered(w)
		return true
	}
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	rl := reqLine{ctx: context.Background(), method: method, path: path, uri: path}
	if user == "" { // not a user's file (nor Extension Mobility's, never served here): a device's realm
		rl.realm = prov.LoginRealm
	}
	if auth := c.Request.Header.Peek("Authorization"); len(auth) > 0 {
		if ok, stale := h.authenticate(rl, string(auth), &req, kind, nil); !ok {
			w := &fastAnswer{c: c}
			h.challenge(w, rl, src, stale)
			answered(w)
			return true
		}
	}
	ct, err := h.files.Read(rl.ctx, req)
	if err != nil {
		w := &fastAnswer{c: c}
		h.fail(w, rl, err, src)
		answered(w)
		return true
	}
	if ct.Kind == files.KindStatic {
		proto := req.Proto // not req: a closure that outlives the call would move it to the heap
		if conditional(&c.Request.Header) {
			var n int64
			status, n = staticConditional(c, ct, head, func(status int, n int64) { h.files.Observe(proto, kind, status, n) })
			streamed, sent = n < 0, max(n, 0)
			return true
		}
		streamed = !head
		staticAnswer(c, ct, head, func(n int64) { h.files.Observe(proto, kind, http.StatusOK, n) })
		return true
	}
	defer ct.Close()
	etag, ctype := ct.ETag, ct.ContentType
	hh := ct.HTTP
	if hh != nil {
		etag, ctype = hh.ETag[0], hh.ContentType[0]
	}
	hd := &c.Response.Header
	hd.SetContentType(ctype)
	if etag != "" {
		hd.Set("ETag", etag)
	}
	// Rendered files are small and carry secrets: see get.
	hd.Set("Cache-Control", "no-store")
	if etag != "" && string(c.Request.Header.Peek("If-None-Match")) == etag {
		status = http.StatusNotModified
		c.SetStatusCode(http.StatusNotModified)
		return true
	}
	if head {
		hd.SetContentLength(int(ct.Size))
		return true
	}
	if hh != nil && hh.Body != nil {
		// The cache's bytes, written as they are (never changed: a new
		// render is a new entry); one writev of header and body.
		c.Response.SetBodyRaw(hh.Body)
		sent = int64(len(hh.Body))
		return true
	}
	// Copied into fasthttp's pooled body buffer: one write of header and body.
	sent, _ = io.Copy(c, ct.Body)
	return true
}

// staticAnswer is http.ServeContent's answer to a plain GET or HEAD of
// a static file (a firmware image): streamed from the file, which fasthttp
// closes once written, done told the bytes sent.
func staticAnswer(c *fasthttp.RequestCtx, ct *files.Content, head bool, done func(n int64)) {
	hd := &c.Response.Header
	hd.SetContentType(ct.ContentType)
	if ct.ETag != "" {
		hd.Set("ETag", ct.ETag)
	}
	if !ct.ModTime.IsZero() && !ct.ModTime.Equal(time.Unix(0, 0)) {
		hd.Set("Last-Modified", ct.ModTime.UTC().Format(http.TimeFormat))
	}
	hd.Set("Accept-Ranges", "bytes")
	if head {
		_ = ct.Close()
		hd.SetContentLength(int(ct.Size))
		return
	}
	c.Response.SetBodyStream(&contentStream{c: ct, left: ct.Size, done: done}, int(ct.Size))
}

// contentStream is a static file's body for fasthttp, which closes it once
// written or when the client went away; done then counts what was read
// from the file, not the file's size, so a broken transfer is not counted
// as a whole one.
type contentStream struct {
	c    *files.Content
	n    int64
	left int64 // of the answer's length: a range ends before the file
	done func(n int64)
}

func (s *contentStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.c.Body.Read(p)
	s.n += int64(n)
	s.left -= int64(n)
	return n, err
}

func (s *contentStream) Close() error {
	if s.done != nil {
		s.done(s.n)
		s.done = nil
	}
	return s.c.Close()
}

// conditional reports a Range or a precondition: a static file's answer
// is then http.ServeContent's decision (staticConditional).
func conditional(h *fasthttp.RequestHeader) bool {
	for _, k := range conditionHeaders() {
		if len(h.Peek(k)) > 0 {
			return true
		}
	}
	return false
}

// conditionHeaders are the request fields http.ServeContent decides on.
func conditionHeaders() []string {
	return []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}
}

// plainPath: an origin-form target of path characters only (no query,
// escape, dot segment or empty segment), which net/http and fasthttp read
// alike; anything else goes to ServeHTTP.
func plainPath(b []byte) bool {
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	for i, ch := range b {
		switch {
		case ch == '?' || ch == '%' || ch == '#' || ch <= ' ' || ch >= 0x7f || ch == '\\':
			return false
		case ch == '/' && i+1 < len(b) && (b[i+1] == '/' || b[i+1] == '.'):
			return false
		}
	}
	return true
}

// fastRequestError answers a request fasthttp could not read: an upload
// over max_upload_bytes as ServeHTTP does (413, counted in the metrics),
// the rest as fasthttp would.
func (h *Handler) fastRequestError(c *fasthttp.RequestCtx, err error) {
	proto := files.ProtoHTTP
	if c.IsTLS() {
		proto = files.ProtoHTTPS
	}
	w := &fastAnswer{c: c}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		name, _ := strings.CutPrefix(string(c.Path()), h.cfg.PathPrefix+"/")
		w.error("upload too large", http.StatusRequestEntityTooLarge)
		h.files.Observe(proto, files.KindOf(name), w.code(), w.n)
		return
	}
	// A request that could not be read (a malformed request line or
	// header, one too slow): counted as other files' requests with its
	// status, and logged at debug, since any host on the LAN can send them.
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		w.error("request timeout", http.StatusRequestTimeout)
	} else {
		w.error("bad request", http.StatusBadRequest)
	}
	if h.log.Enabled(context.Background(), slog.LevelDebug) { // any host can send these: no attributes built for nothing
		h.log.Debug("unreadable provisioning request", "remote", c.RemoteAddr().String(), "status", w.status, "err", err)
	}
	h.files.Observe(proto, files.KindOther, w.code(), w.n)
}

// fastAnswer is the fast path's answer, counted for the metrics as
// countingWriter counts ServeHTTP's.
type fastAnswer struct {
	c      *fasthttp.RequestCtx
	status int
	n      int64
}

func (a *fastAnswer) addHeader(key, value string) { a.c.Response.Header.Add(key, value) }

// error writes what http.Error does.
func (a *fastAnswer) error(msg string, code int) {
	a.status = code
	a.c.SetStatusCode(code)
	a.c.SetContentType("text/plain; charset=utf-8")
	a.c.Response.Header.Set("X-Content-Type-Options", "nosniff")
	a.c.SetBodyString(msg + "\n")
	a.n = int64(len(msg) + 1)
	if a.c.IsHead() {
		a.n = 0
	}
}

func (a *fastAnswer) code() int {
	if a.status == 0 {
		return http.StatusOK
	}
	return a.status
}

// streamingWriter makes the adaptor stream a large answer (a firmware
// image) instead of holding all of it: a flush after the header switches
// it to a pipe.
type streamingWriter struct{ http.ResponseWriter }

func (s streamingWriter) WriteHeader(code int) {
	s.ResponseWriter.WriteHeader(code)
	n, err := strconv.ParseInt(s.Header().Get("Content-Length"), 10, 64)
	if f, ok := s.ResponseWriter.(http.Flusher); ok && err == nil && n > 64<<10 {
		f.Flush()
	}
}

// fastLogger routes fasthttp's log lines to slog at debug: they are about
// clients (broken connections, malformed requests).
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) { // not formatted for nothing
		f.l.Debug(fmt.Sprintf(format, args...))
	}
}
