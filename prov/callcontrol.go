package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Allowed call operations of a user (PortalAccess.CallOperations).
const (
	CallOpsNone      = "none"
	CallOpsControl   = "call_control"
	CallOpsSoftphone = "softphone"
	CallOpsBoth      = "both"
)

// ValidCallOperations reports whether v is a value an admin may set (and
// a user may pick).
func ValidCallOperations(v string) bool {
	switch v {
	case "", CallOpsNone, CallOpsControl, CallOpsSoftphone, CallOpsBoth:
		return true
	}
	return false
}

// callOps splits a mode into its two rights.
func callOps(v string) (control, softphone bool) {
	return v == CallOpsControl || v == CallOpsBoth, v == CallOpsSoftphone || v == CallOpsBoth
}

// CallMode is what u uses now: the user's pick (PortalAccess.CallMode)
// within what the admin allows (PortalAccess.CallOperations); no pick
// means everything allowed.
func CallMode(u User) string {
	ac, as := callOps(u.Portal.CallOperations)
	if u.Portal.CallMode != "" {
		pc, ps := callOps(u.Portal.CallMode)
		ac, as = ac && pc, as && ps
	}
	switch {
	case ac && as:
		return CallOpsBoth
	case ac:
		return CallOpsControl
	case as:
		return CallOpsSoftphone
	}
	return CallOpsNone
}

// CanSoftphone reports whether u uses the portal's softphone.
func CanSoftphone(u User) bool { _, s := callOps(CallMode(u)); return s }

// AllowedCallModes are the modes u may pick: those within the admin's.
func AllowedCallModes(u User) []string {
	ac, as := callOps(u.Portal.CallOperations)
	out := []string{CallOpsNone}
	if ac {
		out = append(out, CallOpsControl)
	}
	if as {
		out = append(out, CallOpsSoftphone)
	}
	if ac && as {
		out = append(out, CallOpsBoth)
	}
	return out
}

// Errors of call control.
var (
	// ErrNoPhone: none of the user's phones is registered.
	ErrNoPhone = errors.New("no registered desk phone")
	// ErrCallControlOff: the SIP proxy is not running.
	ErrCallControlOff = errors.New("call control is not available")
	// ErrNotConnected: hold or resume of a call that is not connected.
	ErrNotConnected = errors.New("the call is not connected")
	// ErrNotSupported: the other party does not accept a transfer (REFER).
	ErrNotSupported = errors.New("the other party cannot be transferred")
)

// ControlledCall is a click-to-dial call as the portal shows it.
type ControlledCall struct {
	ID      string    `json:"id"`
	Target  string    `json:"target"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Started time.Time `json:"started"`
}

// DialOrder asks the SIP side to call DeviceID's phone, then Target.
type DialOrder struct {
	Owner    Owner // a user: only its owner sees and hangs up a call
	DeviceID int64
	CallerID string // the user's number, shown to the target
	Target   string
}

// CallController is implemented by the daemon over the SIP proxy. Dial
// applies the call policy of the phone's credential (a locked phone's
// authorized and emergency numbers) and returns an error wrapping
// ErrDenied, ErrNotFound (no such number), ErrNoPhone or ErrCallControlOff.
type CallController interface {
	Dial(ctx context.Context, o DialOrder) (ControlledCall, error)
	HangUp(ctx context.Context, owner Owner, id string) error
	// Hold puts a connected call on hold (on) or resumes it.
	Hold(ctx context.Context, owner Owner, id string, on bool) error
	// Transfer hands the other party to target (blind, REFER) and ends
	// the user's part; ErrNotSupported when that party cannot.
	Transfer(ctx context.Context, owner Owner, id, target string) error
	Calls(owner Owner) []ControlledCall
}

// CallControl is the portal's call control of a user's desk phone.
type CallControl struct {
	store Store
	reg   Registrar
	ctl   CallController
	mgr   *Manager
	log   *slog.Logger
}

// NewCallControl returns call control; ctl nil answers ErrCallControlOff.
func NewCallControl(st Store, reg Registrar, ctl CallController, mgr *Manager, logger *slog.Logger) *CallControl {
	return &CallControl{store: st, reg: reg, ctl: ctl, mgr: mgr, log: logger}
}

// CanControl reports whether the admin allows u call control.
func CanControl(u User) bool { c, _ := callOps(CallMode(u)); return c }

func ownerOf(u User) Owner { return UserOwner(u.ID) }

// Calls lists u's click-to-dial calls in progress.
func (c *CallControl) Calls(u User) []ControlledCall {
	if c == nil || c.ctl == nil {
		return nil
	}
	return c.ctl.Calls(ownerOf(u))
}

// Dial calls u's desk phone and connects it to target: the phone u is
// logged in on, else u's assigned desk phone (locked, so under the locked
// policy), whichever is registered. Audited.
func (c *CallControl) Dial(ctx context.Context, u User, target string, a Actor) (ControlledCall, error) {
	if !CanControl(u) {
		return ControlledCall{}, fmt.Errorf("call control: %w", ErrDenied)
	}
	if c == nil || c.ctl == nil || c.reg == nil {
		return ControlledCall{}, ErrCallControlOff
	}
	if target == "" || len(target) > 64 {
		return ControlledCall{}, fmt.Errorf("target: %w", ErrInvalid)
	}
	dev, err := c.phoneOf(ctx, u)
	if err != nil {
		return ControlledCall{}, err
	}
	caller := u.Username
	if nums, err := c.store.NumbersOf(ctx, u.ID); err == nil && len(nums) > 0 {
		caller = nums[0]
	}
	cc, err := c.ctl.Dial(ctx, DialOrder{Owner: ownerOf(u), DeviceID: dev, CallerID: caller, Target: target})
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	c.mgr.Audit(ctx, a, "call.dial", UserObject(u.Username), nil,
		map[string]any{"target": target, "device": dev, "result": result})
	return cc, err
}

// HangUp ends one of u's calls. Audited.
func (c *CallControl) HangUp(ctx context.Context, u User, id string, a Actor) error {
	if !CanControl(u) {
		return fmt.Errorf("call control: %w", ErrDenied)
	}
	if c == nil || c.ctl == nil {
		return ErrCallControlOff
	}
	if err := c.ctl.HangUp(ctx, ownerOf(u), id); err != nil {
		return err
	}
	c.mgr.Audit(ctx, a, "call.hangup", UserObject(u.Username), nil, map[string]any{"call": id})
	return nil
}

// Hold puts one of u's calls on hold (on) or resumes it. Audited.
func (c *CallControl) Hold(ctx context.Context, u User, id string, on bool, a Actor) error {
	if !CanControl(u) {
		return fmt.Errorf("call control: %w", ErrDenied)
	}
	if c == nil || c.ctl == nil {
		return ErrCallControlOff
	}
	if err := c.ctl.Hold(ctx, ownerOf(u), id, on); err != nil {
		return err
	}
	action := "call.resume"
	if on {
		action = "call.hold"
	}
	c.mgr.Audit(ctx, a, action, UserObject(u.Username), nil, map[string]any{"call": id})
	return nil
}

// Transfer hands the other party of one of u's calls to target. Audited.
func (c *CallControl) Transfer(ctx context.Context, u User, id, target string, a Actor) error {
	if !CanControl(u) {
		return fmt.Errorf("call control: %w", ErrDenied)
	}
	if c == nil || c.ctl == nil {
		return ErrCallControlOff
	}
	if target == "" || len(target) > 64 {
		return fmt.Errorf("target: %w", ErrInvalid)
	}
	err := c.ctl.Transfer(ctx, ownerOf(u), id, target)
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	c.mgr.Audit(ctx, a, "call.transfer", UserObject(u.Username), nil, map[string]any{"call": id, "target": target, "result": result})
	return err
}

// phoneOf picks the registered phone to call first.
func (c *CallControl) phoneOf(ctx context.Context, u User) (int64, error) {
	var devs []int64
	ss, err := c.store.ListSessions(ctx, SessionQuery{UserID: u.ID, ActiveOnly: true})
	if err != nil {
		return 0, fmt.Errorf("call control: %w", err)
	}
	slices.SortFunc(ss, func(a, b Session) int { return b.StartedAt.Compare(a.StartedAt) })
	for _, s := range ss {
		devs = append(devs, s.DeviceID)
	}
	ds, err := devicesOf(ctx, c.store, u.ID)
	if err != nil {
		return 0, fmt.Errorf("call control: %w", err)
	}
	for _, d := range ds {
		devs = append(devs, d.ID)
	}
	for _, id := range devs {
		if id != 0 && len(c.reg.DeviceBindings(ctx, id)) > 0 {
			return id, nil
		}
	}
	return 0, ErrNoPhone
}
