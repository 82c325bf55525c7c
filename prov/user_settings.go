package prov

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Self-service rules of the user portal: call handling, the personal
// directory and its speed dials, line keys, remote logout. Every change is
// audited and reaches the user's phones at once through a check-sync.

// Bounds of the self-service settings.
const (
	// MaxSpeedDial is the highest speed-dial index a contact may take.
	MaxSpeedDial = 99
	// MaxLineKeys is the most line keys a user may give their line.
	MaxLineKeys = 8
	// ParamLineKeys is the user-layer parameter that carries the line keys.
	ParamLineKeys = "reg.1.lineKeys"
	// maxPortalContacts bounds a directory edited in the portal, as the
	// phone's own upload is bounded.
	maxPortalContacts = 2000
)

// contactNumberRE admits extensions, E.164 numbers, dial strings and SIP
// user parts or URIs, the things a phone's directory dials.
var contactNumberRE = regexp.MustCompile(`^[0-9A-Za-z+*#@._:-]{1,64}$`)

// maxForwardTarget bounds a forwarding or twinning target: a number or a
// user name, never longer than a user name may be.
const maxForwardTarget = 64

// ValidateCallHandling checks the form of forwarding targets and the
// no-answer delay; errors name the field. An unset delay with a no-answer
// target becomes 20 s. Manager.UpdateUser also checks each target against
// the directory (known user, not the user's own line).
func ValidateCallHandling(ch *CallHandling) error {
	for _, f := range ch.targets() {
		*f.v = strings.TrimSpace(*f.v)
		switch v := *f.v; {
		case v == "":
		case len(v) > maxForwardTarget:
			return Invalid(f.name, fmt.Sprintf("is longer than %d characters", maxForwardTarget))
		case !ValidNumber(v) && !usernameRE.MatchString(v):
			return Invalid(f.name, "is not an extension, an E.164 number or a user name")
		}
	}
	if ch.NoAnswerSeconds == 0 && ch.ForwardNoAnswer != "" {
		ch.NoAnswerSeconds = 20
	}
	if ch.NoAnswerSeconds != 0 && (ch.NoAnswerSeconds < 5 || ch.NoAnswerSeconds > 120) {
		return Invalid("no_answer_seconds", "is between 5 and 120 seconds")
	}
	return nil
}

type handlingTarget struct {
	name string
	v    *string
}

// targets are the fields that send a call elsewhere, named as the API names them.
func (ch *CallHandling) targets() []handlingTarget {
	return []handlingTarget{{"forward_always", &ch.ForwardAlways}, {"forward_busy", &ch.ForwardBusy},
		{"forward_no_answer", &ch.ForwardNoAnswer}, {"twinning", &ch.Twinning}}
}

// checkHandlingTargets checks each target against the directory: a number
// or user name that is the user's own would ring the user again (a loop
// the proxy only stops at its redirect budget), and a target that is not
// a number must be a known user, as the proxy routes nothing else. Other
// numbers are external and go to the trunk.
func (m *Manager) checkHandlingTargets(ctx context.Context, st Store, u User, ch *CallHandling) error {
	if err := ValidateCallHandling(ch); err != nil {
		return err
	}
	for _, f := range ch.targets() {
		v := *f.v
		if v == "" {
			continue
		}
		if strings.EqualFold(v, u.Username) {
			return Invalid(f.name, "is the user's own user name: the call would come back to them")
		}
		if ValidNumber(v) {
			for _, n := range plusForms(v) {
				o, err := st.UserByNumber(ctx, n)
				if err == nil && o.ID == u.ID {
					return Invalid(f.name, "is the user's own number: the call would come back to them")
				} else if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
			continue
		}
		if _, err := st.GetUser(ctx, v); errors.Is(err, ErrNotFound) {
			return Invalid(f.name, "is no number and no known user")
		} else if err != nil {
			return err
		}
	}
	return nil
}

// SetCallHandling replaces the user's call handling; the proxy reads it at
// call time, and the user's phones re-sync so a DND indicator follows.
func (m *Manager) SetCallHandling(ctx context.Context, username string, ch CallHandling, a Actor) (User, error) {
	if err := ValidateCallHandling(&ch); err != nil {
		return User{}, err
	}
	u, err := m.UpdateUser(ctx, username, UserPatch{CallHandling: &ch}, a)
	if err != nil {
		return User{}, err
	}
	m.NotifyUserDevices(ctx, u.ID, "call_handling")
	return u, nil
}

// ValidateContacts checks a directory as the portal edits it: names and
// number bounded, speed dials unique in 1..MaxSpeedDial. Positions are
// renumbered in order. Errors name the field as contacts[i].field.
func ValidateContacts(cs []Contact) error {
	if len(cs) > maxPortalContacts {
		return Invalid("contacts", fmt.Sprintf("at most %d contacts", maxPortalContacts))
	}
	seen := map[int]int{}
	for i := range cs {
		c := &cs[i]
		c.FirstName, c.LastName = strings.TrimSpace(c.FirstName), strings.TrimSpace(c.LastName)
		c.Number, c.Label = strings.TrimSpace(c.Number), strings.TrimSpace(c.Label)
		c.Position = i + 1
		f := func(name string) string { return fmt.Sprintf("contacts[%d].%s", i, name) }
		switch {
		case c.FirstName == "" && c.LastName == "":
			return Invalid(f("first_name"), "a first or last name is required")
		case len(c.FirstName) > 64:
			return Invalid(f("first_name"), "at most 64 characters")
		case len(c.LastName) > 64:
			return Invalid(f("last_name"), "at most 64 characters")
		case len(c.Label) > 64:
			return Invalid(f("label"), "at most 64 characters")
		case !contactNumberRE.MatchString(c.Number):
			return Invalid(f("number"), "is a number, extension or SIP address")
		case c.SpeedDial < 0 || c.SpeedDial > MaxSpeedDial:
			return Invalid(f("speed_dial"), fmt.Sprintf("is 0 (none) or 1 to %d", MaxSpeedDial))
		}
		if c.SpeedDial > 0 {
			if j, dup := seen[c.SpeedDial]; dup {
				return Invalid(f("speed_dial"), fmt.Sprintf("speed dial %d is taken by contact %d", c.SpeedDial, j+1))
			}
			seen[c.SpeedDial] = i
		}
	}
	return nil
}

// SetContacts replaces the user's personal directory: the same list the
// phone edits through <user>-directory.xml, so the phones re-sync.
func (m *Manager) SetContacts(ctx context.Context, username string, cs []Contact, a Actor) ([]Contact, error) {
	if err := ValidateContacts(cs); err != nil {
		return nil, err
	}
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	before, err := m.store.ListContacts(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		cs[i].UserID = u.ID
	}
	if err := m.store.ReplaceContacts(ctx, u.ID, cs); err != nil {
		return nil, fmt.Errorf("set contacts: %w", err)
	}
	m.Audit(ctx, a, "user.contacts.replace", "user:"+u.Username, before, cs)
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: "directory"})
	m.NotifyUserDevices(ctx, u.ID, "directory")
	return cs, nil
}

// LineKeys returns how many line keys the user's line takes (0 = the
// phone's default).
func LineKeys(u User) int {
	n, _ := strconv.Atoi(u.Params[ParamLineKeys])
	return n
}

// SetLineKeys sets how many line keys the user's line takes on their
// phones; 0 leaves the phone's default.
func (m *Manager) SetLineKeys(ctx context.Context, username string, n int, a Actor) (User, error) {
	if n < 0 || n > MaxLineKeys {
		return User{}, Invalid("line_keys", fmt.Sprintf("is 0 (phone default) to %d", MaxLineKeys))
	}
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return User{}, err
	}
	before := LineKeys(u)
	params := map[string]string{}
	for k, v := range u.Params {
		params[k] = v
	}
	if n == 0 {
		delete(params, ParamLineKeys)
	} else {
		params[ParamLineKeys] = strconv.Itoa(n)
	}
	u.Params, u.UpdatedAt = params, m.now()
	if err := m.store.UpdateUser(ctx, &u); err != nil {
		return User{}, err
	}
	m.Audit(ctx, a, "user.line_keys", "user:"+u.Username, map[string]int{"line_keys": before},
		map[string]int{"line_keys": n})
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: "buttons"})
	m.NotifyUserDevices(ctx, u.ID, "buttons")
	return u, nil
}

// EndOwnSession logs the user out of one of their phones remotely: the
// same Sessions.End (reason logout) as the phone's logout key. A session
// of another user is ErrNotFound, so IDs cannot be probed.
func (m *Manager) EndOwnSession(ctx context.Context, username, sessionID string, a Actor) error {
	if m.sessions == nil {
		return fmt.Errorf("end session: %w", ErrNotFound)
	}
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return err
	}
	s, err := m.store.GetSession(ctx, sessionID)
	if err != nil || s.UserID != u.ID || !s.Active() {
		return fmt.Errorf("session of %s: %w", username, ErrNotFound)
	}
	return m.sessions.End(ctx, s.ID, EndLogout, a.Name)
}

// DevicesOf returns the desk phones assigned to the user.
func (m *Manager) DevicesOf(ctx context.Context, userID int64) ([]Device, error) {
	return devicesOf(ctx, m.store, userID)
}

// NotifyUserDevices re-provisions every phone that carries the user's
// settings: where they are logged in and their assigned desk phones.
func (m *Manager) NotifyUserDevices(ctx context.Context, userID int64, reason string) {
	var ids []int64
	if ss, err := m.store.ListSessions(ctx, SessionQuery{UserID: userID, ActiveOnly: true}); err == nil {
		for _, s := range ss {
			ids = append(ids, s.DeviceID)
		}
	}
	if ds, err := devicesOf(ctx, m.store, userID); err == nil {
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: id, UserID: userID, Reason: "user_" + reason})
	}
}
