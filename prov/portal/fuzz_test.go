package portal

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary methods, paths, bodies and content types to the
// API as an admin: no request may cause a 5xx or a non-JSON answer.
func FuzzAPI(f *testing.F) {
	seeds := []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/users", "application/json", `{"first_name":"A","last_name":"B","email":"x"}`},
		{"PATCH", "/api/v1/users/fz", "application/json", `{"portal":{"profile":"write"},"call_handling":{"dnd":1}}`},
		{"POST", "/api/v1/users/import?dry_run=1", "text/csv", "first_name,last_name,email\nA,\"B,c\n"},
		{"POST", "/api/v1/devices/0004f2000001/assign", "application/json", `{"user":"fz","kind":"third_party"}`},
		{"PATCH", "/api/v1/sites/1", "application/json", `{"login":{"daily_logout":"25:00"},"trunk":[]}`},
		{"POST", "/api/v1/sessions", "application/json", `{"device":"0004f2000001","user":"fz"}`},
		{"GET", "/api/v1/users?limit=99999999999999999999&fields=,", "", ""},
		{"GET", "/api/v1/audit?since=yesterday", "", ""},
		{"DELETE", "/api/v1/sessions/%00", "", ""},
		{"POST", "/api/v1/devices/0004f2000001/claim", "application/json", `{"pin":"1"}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.body)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n#") || method == "" ||
			strings.ContainsAny(method, " \r\n/") {
			return
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method = method
		u, err := req.URL.Parse(path)
		if err != nil {
			return
		}
		req.URL, req.RequestURI = u, path
		req.Header.Set("Content-Type", ctype)
		req.SetBasicAuth(adminUser, adminPass)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		if method != "HEAD" && rec.Code != 301 && rec.Code != 307 && rec.Code != 308 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d non-JSON %q", method, path, rec.Code, rec.Body)
		}
	})
}

// FuzzParamLines: the admin's name=value lines parse or fail; a name
// holds no '=' nor a line break, and what parses is written back and reads
// the same.
func FuzzParamLines(f *testing.F) {
	f.Add("reg.2.address=2002\r\nreg.2.label = Sales\n")
	f.Add("novalue\n=x\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseParamLines(text)
		if err != nil {
			return
		}
		for k := range m {
			if strings.ContainsAny(k, "=\n") {
				t.Fatalf("name %q holds '=' or a line break", k)
			}
		}
		back, err := parseParamLines(formatParams(m))
		if err != nil || !maps.Equal(back, m) {
			t.Fatalf("%v written back reads %v (%v)", m, back, err)
		}
	})
}
