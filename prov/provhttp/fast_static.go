package provhttp

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"hotdesk/prov/files"
)

// staticConditional answers a GET or HEAD of a static file that carries a
// range or a precondition (a phone resuming a firmware download, or asking
// whether its image changed) on the fast path. http.ServeContent decides
// the answer, as on the net/http front end, into a recorder; the body is
// then streamed from the file with its Content-Length. Through
// fasthttpadaptor such an answer over 64 KiB was streamed chunked without a
// length, which a phone's firmware loader may not take. A request for
// several ranges is answered with the whole file (RFC 9110 §14.2 lets a
// server ignore Range): phones ask for one. done is told the status and the
// bytes read from the file once fasthttp is done with the stream; the
// return is the status and the bytes counted now (an answer without a
// streamed body).
func staticConditional(c *fasthttp.RequestCtx, ct *files.Content, head bool, done func(status int, n int64)) (int, int64) {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	r := &http.Request{Method: method, Header: http.Header{}}
	for _, k := range conditionHeaders() {
		if v := c.Request.Header.Peek(k); len(v) > 0 {
			r.Header.Set(k, string(v))
		}
	}
	if strings.Contains(r.Header.Get("Range"), ",") {
		// Several ranges: the whole file. Dropped before ServeContent,
		// whose multipart writer would read the file from a goroutine of
		// its own, still moving its offset while fasthttp streams it.
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	rec := &decision{header: http.Header{"Content-Type": {ct.ContentType}}}
	if ct.ETag != "" {
		rec.header.Set("Etag", ct.ETag)
	}
	http.ServeContent(rec, r, ct.Name, ct.ModTime, ct.Body)

	start, length := int64(0), ct.Size
	switch {
	case rec.status == http.StatusPartialContent:
		var ok bool
		if start, length, ok = parseContentRange(rec.header.Get("Content-Range")); !ok {
			_ = ct.Close()
			c.Error("internal error", http.StatusInternalServerError)
			return http.StatusInternalServerError, 0
		}
	case rec.status != http.StatusOK:
		// 304, 412, 416, or ServeContent's own error: no file body.
		_ = ct.Close()
		copyHeader(&c.Response.Header, rec.header)
		c.SetStatusCode(rec.status)
		if !head {
			c.SetBody(rec.body)
		}
		return rec.status, int64(len(rec.body))
	}
	hd := &c.Response.Header
	copyHeader(hd, rec.header)
	c.SetStatusCode(rec.status)
	if head {
		_ = ct.Close()
		hd.SetContentLength(int(length))
		return rec.status, 0
	}
	if _, err := ct.Body.Seek(start, io.SeekStart); err != nil {
		_ = ct.Close()
		c.ResetBody()
		c.Error("internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError, 0
	}
	status := rec.status
	c.Response.SetBodyStream(&contentStream{c: ct, left: length, done: func(n int64) { done(status, n) }}, int(length))
	return status, -1
}

// decision records http.ServeContent's answer: its status and header, and
// a body only when it is not the file's (an error text). Writing the file's
// bytes is refused, which ends ServeContent's copy.
type decision struct {
	header http.Header
	status int
	body   []byte
}

var errBodyFromFile = errors.New("provhttp: the file's body is streamed by fasthttp")

func (d *decision) Header() http.Header { return d.header }

func (d *decision) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

func (d *decision) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	if d.status == http.StatusOK || d.status == http.StatusPartialContent {
		return 0, errBodyFromFile
	}
	if len(d.body)+len(p) > 4<<10 {
		return 0, errBodyFromFile // an error text is short
	}
	d.body = append(d.body, p...)
	return len(p), nil
}

// copyHeader sets hd from h; the length is set by the caller or by
// fasthttp from the body.
func copyHeader(hd *fasthttp.ResponseHeader, h http.Header) {
	for k, vv := range h {
		switch k {
		case "Content-Length":
			continue
		case "Content-Type":
			hd.SetContentType(vv[0])
			continue
		}
		for _, v := range vv {
			hd.Add(k, v)
		}
	}
}

// parseContentRange reads "bytes first-last/size" as http.ServeContent
// writes it.
func parseContentRange(v string) (start, length int64, ok bool) {
	spec, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	spec, _, ok = strings.Cut(spec, "/")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	return first, last - first + 1, true
}
