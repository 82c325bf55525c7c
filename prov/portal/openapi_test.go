package portal

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPIMatchesServer checks the served document against the mux
// (every registered route is documented, every documented operation is
// routed to that route) and against live answers (status codes declared,
// every JSON property the server sends is in the schema).
func TestOpenAPIMatchesServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var doc map[string]any
	e.want(e.do(anonymous, "GET", "/api/v1/openapi.json", nil), 200).into(t, &doc)
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	documented := map[string]bool{}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range paths {
		if strings.HasPrefix(path, "/api/v1/me/") {
			continue // the web serves them: TestOpenAPIDocumentsMeRoutes
		}
		for method := range item.(map[string]any) {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			// The mux routes the documented operation to that very pattern.
			req := httptest.NewRequest(strings.ToUpper(method), param.ReplaceAllString(path, "x1"), nil)
			if _, got := e.api.mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
			}
		}
	}
	for _, p := range e.api.registered {
		if !documented[p] {
			t.Errorf("route %s is not in the document", p)
		}
		delete(documented, p)
	}
	for p := range documented {
		t.Errorf("documented %s is not registered", p)
	}
	if len(e.api.registered) < 30 {
		t.Fatalf("only %d routes registered", len(e.api.registered))
	}

	// Live answers conform to the document.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	check := func(method, path string, r resp) {
		t.Helper()
		op, ok := paths[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			t.Fatalf("%s %s undocumented", method, path)
		}
		rs, ok := op["responses"].(map[string]any)[strconv.Itoa(r.code)].(map[string]any)
		if !ok {
			t.Errorf("%s %s answered %d, not declared: %s", method, path, r.code, r.body)
			return
		}
		schema := rs["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		var body any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		conform(t, method+" "+path, schemas, schema.(map[string]any), body)
	}
	u := e.do(asAdmin, "POST", "/api/v1/users", map[string]any{"username": "quinn", "first_name": "Q", "last_name": "R",
		"email": "q@example.test", "numbers": []string{"1201"}, "password": "password-q"})
	check("POST", "/api/v1/users", u)
	check("POST", "/api/v1/users", e.do(asAdmin, "POST", "/api/v1/users", map[string]any{"first_name": "Q"}))
	check("GET", "/api/v1/users", e.do(asAdmin, "GET", "/api/v1/users", nil))
	check("GET", "/api/v1/users/{username}", e.do(asAdmin, "GET", "/api/v1/users/quinn", nil))
	check("GET", "/api/v1/users/{username}", e.do(asAdmin, "GET", "/api/v1/users/nobody", nil))
	check("DELETE", "/api/v1/users/{username}", e.do(asAdmin, "DELETE", "/api/v1/users/quinn", nil))
	check("GET", "/api/v1/users/{username}/numbers", e.do(asAdmin, "GET", "/api/v1/users/quinn/numbers", nil))
	check("POST", "/api/v1/users/import", e.do(asAdmin, "POST", "/api/v1/users/import",
		"first_name,last_name,email\nA,B,ab@example.test\nC,D,bad\n", "text/csv"))
	check("POST", "/api/v1/users/import", e.do(asAdmin, "POST", "/api/v1/users/import?dry_run=1",
		"first_name,last_name,email\nA,B,ab2@example.test\n", "text/csv"))
	check("POST", "/api/v1/devices", e.do(asAdmin, "POST", "/api/v1/devices", deviceCreate{MAC: "0004f2990001", SiteID: e.site.ID}))
	check("GET", "/api/v1/devices", e.do(asAdmin, "GET", "/api/v1/devices", nil))
	check("POST", "/api/v1/devices/{mac}/assign", e.do(asAdmin, "POST", "/api/v1/devices/0004f2990001/assign",
		assignBody{User: "quinn", Kind: "third_party"}))
	check("GET", "/api/v1/devices/{mac}/sip-account", e.do(asAdmin, "GET", "/api/v1/devices/0004f2990001/sip-account?reveal=1", nil))
	check("POST", "/api/v1/devices/{mac}/unassign", e.do(asAdmin, "POST", "/api/v1/devices/0004f2990001/unassign", nil))
	check("POST", "/api/v1/devices/{mac}/assign", e.do(asAdmin, "POST", "/api/v1/devices/0004f2990001/assign",
		assignBody{User: "quinn"}))
	check("POST", "/api/v1/sites", e.do(asAdmin, "POST", "/api/v1/sites", map[string]any{"name": "b2",
		"authorized": []map[string]string{{"description": "x", "number": "1000"}}}))
	check("GET", "/api/v1/sites", e.do(asAdmin, "GET", "/api/v1/sites", nil))
	check("POST", "/api/v1/sessions", e.do(asAdmin, "POST", "/api/v1/sessions", loginBody{Device: "0004f2990001", User: "quinn"}))
	check("POST", "/api/v1/sessions", e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2990001",
		User: "quinn", Password: "wrong-pw"}))
	check("GET", "/api/v1/sessions", e.do(asAdmin, "GET", "/api/v1/sessions?all=1", nil))
	check("GET", "/api/v1/status", e.do(asAdmin, "GET", "/api/v1/status", nil))
	check("GET", "/api/v1/audit", e.do(asAdmin, "GET", "/api/v1/audit", nil))
	check("POST", "/api/v1/tokens", e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "t"}))
	check("GET", "/api/v1/users", e.do(anonymous, "GET", "/api/v1/users", nil))
}

// conform fails when body has a property its schema does not declare.
func conform(t *testing.T, where string, schemas map[string]any, schema map[string]any, body any) {
	t.Helper()
	if ref, ok := schema["$ref"].(string); ok {
		schema = schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
	}
	switch v := body.(type) {
	case map[string]any:
		if schema["type"] != "object" {
			t.Errorf("%s: object where the schema says %v", where, schema["type"])
			return
		}
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			return // free-form object
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				t.Errorf("%s: property %q is not in the schema", where, k)
				continue
			}
			conform(t, where+"."+k, schemas, ps, v[k])
		}
	case []any:
		if schema["type"] != "array" {
			t.Errorf("%s: array where the schema says %v", where, schema["type"])
			return
		}
		for _, it := range v {
			conform(t, where+"[]", schemas, schema["items"].(map[string]any), it)
		}
	case string:
		if schema["type"] != "string" {
			t.Errorf("%s: string where the schema says %v", where, schema["type"])
		}
	case float64:
		if schema["type"] != "integer" && schema["type"] != "number" {
			t.Errorf("%s: number where the schema says %v", where, schema["type"])
		}
	case bool:
		if schema["type"] != "boolean" {
			t.Errorf("%s: boolean where the schema says %v", where, schema["type"])
		}
	}
}
