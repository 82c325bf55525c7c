package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// apiError is every error body: the message and, for validation, the field.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

// fail maps a domain error to its status and body.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *prov.FieldError
	var ce *prov.ConflictError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Msg, fe.Field)
	case errors.As(err, &ce):
		writeError(w, http.StatusConflict, ce.Msg, ce.Field)
	case errors.Is(err, prov.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found", "")
	case errors.Is(err, prov.ErrConflict):
		writeError(w, http.StatusConflict, "already exists", "")
	case errors.Is(err, prov.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error(), "")
	case errors.Is(err, prov.ErrLocked):
		writeError(w, http.StatusTooManyRequests, "too many failed attempts; try again later", "")
	case errors.Is(err, prov.ErrAuth):
		writeError(w, http.StatusUnauthorized, "authentication failed", "")
	case errors.Is(err, prov.ErrDenied):
		writeError(w, http.StatusForbidden, err.Error(), "")
	case errors.Is(err, prov.ErrDisabled):
		writeError(w, http.StatusConflict, "the user is disabled", "user")
	case errors.Is(err, prov.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error(), "")
	default:
		a.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", "")
	}
}

// decode reads a JSON body into v, refusing unknown fields, trailing data
// and bodies over MaxBodyBytes; it answers 4xx itself and returns false.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	_, ok := a.decodeRaw(w, r, v)
	return ok
}

// decodeRaw is decode that also returns the body's top-level members, so
// a PATCH can merge nested objects into what is stored.
func (a *api) decodeRaw(w http.ResponseWriter, r *http.Request, v any) (map[string]json.RawMessage, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "the body must be application/json", "")
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var raw map[string]json.RawMessage
	if err == nil {
		err = strictJSON(body, v)
	}
	if err == nil {
		if err = json.Unmarshal(body, &raw); err != nil {
			raw = nil // not an object: v accepted it, nothing to merge
			err = nil
		}
	}
	if err == nil {
		return raw, true
	}
	a.m.dropped.WithLabelValues("bad_json").Inc()
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("must be %s", jsonKind(te.Type.Kind().String())), te.Field)
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "the body is too large", "")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeError(w, http.StatusBadRequest, "unknown field", f)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "a JSON body is required", "")
	default:
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), "")
	}
	return nil, false
}

// strictJSON decodes one JSON value with no unknown fields and nothing after it.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// mergeInto decodes the member name of raw, when present, into dst, which
// holds the stored value: fields the member does not name stay.
func mergeInto(raw map[string]json.RawMessage, name string, dst any) error {
	m, ok := raw[name]
	if !ok || string(m) == "null" {
		return nil
	}
	if err := strictJSON(m, dst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// pageParams reads ?offset= and ?limit=.
func (a *api) pageParams(w http.ResponseWriter, r *http.Request) (offset, limit int, ok bool) {
	if s := r.URL.Query().Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "must be a number ≥ 0", "offset")
			return 0, 0, false
		}
		offset = n
	}
	limit, ok = a.limitParam(w, r, a.cfg.DefaultPageSize)
	return offset, limit, ok
}

// limitParam reads ?limit= (1..MaxPageSize), def when absent.
func (a *api) limitParam(w http.ResponseWriter, r *http.Request, def int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > a.cfg.MaxPageSize {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("must be between 1 and %d", a.cfg.MaxPageSize), "limit")
		return 0, false
	}
	return n, true
}

// boolParam reads a query flag: 1/true/yes.
func boolParam(r *http.Request, name string) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "1", "true", "yes":
		return true
	}
	return false
}
