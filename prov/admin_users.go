package prov

import (
	"context"
	"errors"
	"fmt"
)

// disabledRecord is what the audit log keeps of what disabling removed, so
// an admin can see what to reassign after re-enabling.
type disabledRecord struct {
	Status       UserStatus   `json:"status"`
	Numbers      []string     `json:"numbers,omitempty"`
	Devices      []string     `json:"devices,omitempty"`
	CallHandling CallHandling `json:"call_handling"`
}

// DisableUser disables a user, never deleting them: the account is marked
// disabled, their numbers, desk phones and call-handling features are
// removed, every login session ends (reason user_disabled, through
// Sessions.End like any logout) and the bindings of their permanent SIP
// account are dropped. Sessions, call records and audit history stay.
func (m *Manager) DisableUser(ctx context.Context, username string, a Actor) (User, error) {
	var u User
	var before, after disabledRecord
	var devices []Device
	err := m.store.WithTx(ctx, func(tx Store) error {
		var err error
		if u, err = tx.GetUser(ctx, username); err != nil {
			return err
		}
		nums, err := tx.NumbersOf(ctx, u.ID)
		if err != nil {
			return err
		}
		if devices, err = devicesOf(ctx, tx, u.ID); err != nil {
			return err
		}
		before = disabledRecord{Status: u.Status, Numbers: nums, CallHandling: u.CallHandling}
		for _, d := range devices {
			before.Devices = append(before.Devices, d.MAC)
		}
		// Disabled first, in the same transaction: from the commit on, no
		// door can log the user in, so no session can start behind EndAll.
		u.Status, u.CallHandling = StatusDisabled, CallHandling{}
		if err := tx.UpdateUser(ctx, &u); err != nil {
			return err
		}
		for _, n := range nums {
			if err := tx.UnassignNumber(ctx, n); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		for i := range devices {
			clearAssignment(&devices[i])
			if err := tx.UpdateDevice(ctx, &devices[i]); err != nil {
				return err
			}
		}
		after = disabledRecord{Status: u.Status}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	// The credential index drops the permanent account at once.
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: string(EndUserDisabled)})
	if m.sessions != nil {
		if err := m.sessions.EndAll(ctx, u.ID, EndUserDisabled, a); err != nil {
			m.logger.Error("disable: ending sessions", "user", u.Username, "err", err)
		}
	}
	m.unbind(ctx, UserOwner(u.ID))
	for _, d := range devices {
		m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: string(EndUnassigned)})
	}
	m.Audit(ctx, a, "user.disable", UserObject(u.Username), before, after)
	return u, nil
}

// EnableUser re-activates a disabled user. Numbers, phones and features
// are not restored: the admin reassigns them.
func (m *Manager) EnableUser(ctx context.Context, username string, a Actor) (User, error) {
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return User{}, err
	}
	if u.Status == StatusActive {
		return u, nil
	}
	u.Status = StatusActive
	if err := m.store.UpdateUser(ctx, &u); err != nil {
		return User{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID})
	m.Audit(ctx, a, "user.enable", UserObject(u.Username),
		map[string]string{"status": string(StatusDisabled)}, map[string]string{"status": string(StatusActive)})
	return u, nil
}

// devicesOf lists the devices assigned to userID. The store has no index
// query for it; an office has at most a few thousand phones.
func devicesOf(ctx context.Context, st Store, userID int64) ([]Device, error) {
	all, _, err := st.ListDevices(ctx, DeviceQuery{})
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, d := range all {
		if d.AssignedUserID == userID {
			out = append(out, d)
		}
	}
	return out, nil
}

// AssignNumbers gives numbers to an active user, all or none; a number
// another user has is a ConflictError naming it.
func (m *Manager) AssignNumbers(ctx context.Context, username string, numbers []string, a Actor) ([]string, error) {
	if len(numbers) == 0 {
		return nil, Invalid("numbers", "is required")
	}
	for _, n := range numbers {
		if !ValidNumber(n) {
			return nil, Invalid("numbers", fmt.Sprintf("%q is not an extension or E.164 number", n))
		}
	}
	var u User
	var before, after []string
	err := m.store.WithTx(ctx, func(tx Store) error {
		var err error
		if u, err = tx.GetUser(ctx, username); err != nil {
			return err
		}
		if u.Status != StatusActive {
			return fmt.Errorf("user %s: %w", username, ErrDisabled)
		}
		if before, err = tx.NumbersOf(ctx, u.ID); err != nil {
			return err
		}
		if err := CheckNamespace(ctx, tx, u.ID, u.Username, numbers); err != nil {
			return err
		}
		for _, n := range numbers {
			if err := tx.AssignNumber(ctx, n, u.ID); errors.Is(err, ErrConflict) {
				return &ConflictError{Field: "numbers", Msg: n + " belongs to another user"}
			} else if err != nil {
				return err
			}
		}
		after, err = tx.NumbersOf(ctx, u.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	m.afterNumbersChanged(ctx, u)
	m.Audit(ctx, a, "user.numbers.assign", UserObject(u.Username), map[string]any{"numbers": before},
		map[string]any{"numbers": after})
	return after, nil
}

// UnassignNumber takes number away from the user who has it.
func (m *Manager) UnassignNumber(ctx context.Context, username, number string, a Actor) ([]string, error) {
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	before, err := m.store.NumbersOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	owner, err := m.store.UserByNumber(ctx, number)
	if err != nil || owner.ID != u.ID {
		return nil, fmt.Errorf("number %s of user %s: %w", number, username, ErrNotFound)
	}
	if err := m.store.UnassignNumber(ctx, number); err != nil {
		return nil, err
	}
	after, err := m.store.NumbersOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	m.afterNumbersChanged(ctx, u)
	// The canonical AOR may have changed: bindings made under the old one
	// by the permanent account must register again.
	m.unbind(ctx, UserOwner(u.ID))
	m.Audit(ctx, a, "user.numbers.unassign", UserObject(u.Username), map[string]any{"numbers": before},
		map[string]any{"numbers": after})
	return after, nil
}

// afterNumbersChanged refreshes the credential index and re-provisions the
// phones that carry the user's lines.
func (m *Manager) afterNumbersChanged(ctx context.Context, u User) {
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID})
	ids := map[int64]bool{}
	if ss, err := m.store.ListSessions(ctx, SessionQuery{UserID: u.ID, ActiveOnly: true}); err == nil {
		for _, s := range ss {
			ids[s.DeviceID] = true
		}
	}
	if ds, err := devicesOf(ctx, m.store, u.ID); err == nil {
		for _, d := range ds {
			ids[d.ID] = true
		}
	}
	for id := range ids {
		m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: id, UserID: u.ID})
	}
}
