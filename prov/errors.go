package prov

import "errors"

// Domain outcomes, checked with errors.Is by callers in every room.
var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique name (user name, number, MAC) is taken.
	ErrConflict = errors.New("already exists")
	// ErrInvalid means the input failed validation; wrap it in a *FieldError to name the field.
	ErrInvalid = errors.New("invalid")
	// ErrAuth means a password or credential was wrong. It never says which part.
	ErrAuth = errors.New("authentication failed")
	// ErrLocked means too many failures: the account or source is temporarily refused.
	ErrLocked = errors.New("temporarily locked")
	// ErrDenied means policy forbids the operation (login disabled, one login per user: deny).
	ErrDenied = errors.New("denied by policy")
	// ErrDisabled means the user account is disabled.
	ErrDisabled = errors.New("disabled")
	// ErrDataDirLocked means another hotdeskd already uses the data directory.
	ErrDataDirLocked = errors.New("data directory in use by another process")
	// ErrUnavailable: this node cannot serve the request now (its cluster
	// events are resynchronising); another node, or a retry, can.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// FieldError names the input field that failed validation.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap lets errors.Is(err, ErrInvalid) hold for every field error.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a *FieldError for field.
func Invalid(field, msg string) error { return &FieldError{Field: field, Msg: msg} }
