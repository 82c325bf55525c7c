package portal

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// openAPI serves the document generated from the route table.
func (a *api) openAPI(w http.ResponseWriter, _ *http.Request, _ principal) {
	writeJSON(w, http.StatusOK, a.document())
}

// document builds the OpenAPI 3.0 description of every route; schemas
// come from the Go types the handlers encode and decode.
func (a *api) document() map[string]any {
	sg := &schemaGen{defs: map[string]any{}}
	paths := map[string]any{}
	for _, rt := range append(slices.Clip(a.routes), meRoutes()...) {
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		item[strings.ToLower(rt.Method)] = sg.operation(rt)
	}
	sg.ref(reflect.TypeOf(apiError{}))
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "hotdesk administration API", "version": "1",
			"description": "Users, numbers, desk phones, sites and live state. Errors are " +
				`{"error": "...", "field": "..."} with a 4xx status.`},
		"paths": paths,
		"components": map[string]any{
			"schemas": sg.defs,
			"securitySchemes": map[string]any{
				"basic":  map[string]any{"type": "http", "scheme": "basic"},
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				// The /api/v1/me routes: a portal sign-in's cookie, with the
				// csrf_token of GET /api/v1/me/calls or /voicemail in
				// X-CSRF-Token on writes.
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
		},
		"security": []any{map[string]any{"basic": []any{}}, map[string]any{"bearer": []any{}}},
	}
}

func (sg *schemaGen) operation(rt route) map[string]any {
	op := map[string]any{"summary": rt.Summary, "operationId": operationID(rt)}
	var params []any
	for _, seg := range strings.Split(rt.Path, "/") {
		if strings.HasPrefix(seg, "{") {
			params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}})
		}
	}
	for _, q := range rt.Query {
		params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Desc,
			"schema": map[string]any{"type": q.Type}})
	}
	if params != nil {
		op["parameters"] = params
	}
	switch rt.Body.(type) {
	case nil:
	case csvBody:
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"text/csv": map[string]any{"schema": map[string]any{"type": "string"}}}}
	case wavBody:
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"audio/wav": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
	default:
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": sg.ref(reflect.TypeOf(rt.Body))}}}
	}
	resp := map[string]any{}
	for _, code := range append([]int{rt.OK}, rt.Also...) {
		switch rt.Resp.(type) {
		case noBody:
			resp[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code)}
		case wavBody:
			resp[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code),
				"content": map[string]any{"audio/wav": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		default:
			resp[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code),
				"content": map[string]any{"application/json": map[string]any{"schema": sg.ref(reflect.TypeOf(rt.Resp))}}}
		}
	}
	errs := rt.Errors
	switch rt.Auth {
	case authAdmin:
		errs = append(append([]int(nil), errs...), http.StatusUnauthorized, http.StatusTooManyRequests)
	case authSession:
		errs = append(append([]int(nil), errs...), http.StatusUnauthorized)
	}
	for _, code := range errs {
		resp[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code),
			"content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"$ref": "#/components/schemas/apiError"}}}}
	}
	op["responses"] = resp
	switch {
	case rt.Auth == authSession:
		op["security"] = []any{map[string]any{"session": []any{}}}
	case rt.Auth != authAdmin:
		op["security"] = []any{map[string]any{}, map[string]any{"basic": []any{}}, map[string]any{"bearer": []any{}}}
	}
	return op
}

func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.NewReplacer("-", "", ".", "").Replace(seg)
		if seg != "" {
			b.WriteString(strings.ToUpper(seg[:1]) + seg[1:])
		}
	}
	return b.String()
}

// schemaGen turns Go types into JSON schemas, naming structs in components.
type schemaGen struct {
	defs map[string]any
}

var timeType = reflect.TypeOf(time.Time{})

func (sg *schemaGen) ref(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Struct:
		name := t.Name()
		if _, ok := sg.defs[name]; !ok {
			sg.defs[name] = map[string]any{} // placeholder against recursion
			props := map[string]any{}
			sg.fields(t, props)
			sg.defs[name] = map[string]any{"type": "object", "properties": props}
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return map[string]any{"type": "array", "items": sg.ref(t.Elem())}
	case t.Kind() == reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return map[string]any{"type": "object"}
		}
		return map[string]any{"type": "object", "additionalProperties": sg.ref(t.Elem())}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return map[string]any{"type": "integer"}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return map[string]any{"type": "number"}
	case t.Kind() == reflect.Interface:
		return map[string]any{}
	}
	return map[string]any{"type": "string"}
}

// fields adds t's JSON properties to props, flattening embedded structs
// the way encoding/json does (an outer field wins over an embedded one).
func (sg *schemaGen) fields(t reflect.Type, props map[string]any) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := jsonName(f)
		if !ok {
			continue
		}
		if f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			embedded = append(embedded, f.Type)
			continue
		}
		props[name] = sg.ref(f.Type)
	}
	for _, et := range embedded {
		inner := map[string]any{}
		sg.fields(et, inner)
		for k, v := range inner {
			if _, ok := props[k]; !ok {
				props[k] = v
			}
		}
	}
}

// jsonName is the field's JSON name; false for skipped fields.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if tag == "-" || (!f.IsExported() && !f.Anonymous) {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

// jsonFieldNames lists the JSON property names of v's type.
func jsonFieldNames(v any) []string {
	props := map[string]any{}
	(&schemaGen{defs: map[string]any{}}).fields(reflect.TypeOf(v), props)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	return out
}
