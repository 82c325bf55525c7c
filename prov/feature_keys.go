package prov

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Features a phone key can carry (button programming, seed 002).
const (
	// KeyBLF watches a colleague's line (busy lamp field): the key lights
	// while they ring or talk and calls them when pressed. Target is a
	// number of an active user.
	KeyBLF = "blf"
	// KeySpeedDial calls Target.
	KeySpeedDial = "speed_dial"
	// KeyDND toggles the user's do-not-disturb (the site's DND code).
	KeyDND = "dnd"
	// KeyForward forwards all the user's calls to Target (the site's
	// forward code followed by it); Target "" ends forwarding.
	KeyForward = "forward"
)

// MaxFeatureKeys bounds a user's feature keys (a VVX 600's 16 line keys).
const MaxFeatureKeys = 16

// maxKeyLabel bounds a key's label: the phone shows a short one.
const maxKeyLabel = 32

// FeatureKey is one programmed key.
type FeatureKey struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
	Label  string `json:"label,omitempty"`
}

// ValidateKeys checks the form of keys (trimming them); SetKeys checks a
// BLF target against the directory too. Errors name keys[i].field.
func ValidateKeys(keys []FeatureKey) error {
	if len(keys) > MaxFeatureKeys {
		return Invalid("keys", fmt.Sprintf("at most %d keys", MaxFeatureKeys))
	}
	for i := range keys {
		k := &keys[i]
		f := func(field string) string { return fmt.Sprintf("keys[%d].%s", i, field) }
		k.Kind, k.Target, k.Label = strings.TrimSpace(k.Kind), strings.TrimSpace(k.Target), strings.TrimSpace(k.Label)
		if utf8.RuneCountInString(k.Label) > maxKeyLabel || strings.ContainsAny(k.Label, "\r\n\t") {
			return Invalid(f("label"), fmt.Sprintf("is one line of at most %d characters", maxKeyLabel))
		}
		switch k.Kind {
		case KeyBLF, KeySpeedDial:
			if k.Target == "" {
				return Invalid(f("target"), "is required: the number the key calls")
			}
			if !ValidNumber(k.Target) {
				return Invalid(f("target"), "is not an extension or an E.164 number")
			}
		case KeyForward:
			if k.Target != "" && (len(k.Target) > maxForwardTarget || !ValidNumber(k.Target)) {
				return Invalid(f("target"), "is not an extension or an E.164 number (empty: the key ends forwarding)")
			}
		case KeyDND:
			if k.Target != "" {
				return Invalid(f("target"), "is empty: the key toggles do-not-disturb")
			}
		default:
			return Invalid(f("kind"), "is one of blf, speed_dial, dnd, forward")
		}
	}
	return nil
}

// SetKeys replaces the user's feature keys; a BLF key must watch an
// active user's number, never the user's own. The user's phones re-sync.
func (m *Manager) SetKeys(ctx context.Context, username string, keys []FeatureKey, a Actor) (User, error) {
	keys = append([]FeatureKey(nil), keys...)
	if err := ValidateKeys(keys); err != nil {
		return User{}, err
	}
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return User{}, err
	}
	for i, k := range keys {
		if k.Kind != KeyBLF {
			continue
		}
		o, err := m.store.UserByNumber(ctx, k.Target)
		switch {
		case errors.Is(err, ErrNotFound):
			return User{}, Invalid(fmt.Sprintf("keys[%d].target", i), "is no user's number: a BLF key watches a colleague")
		case err != nil:
			return User{}, err
		case o.ID == u.ID:
			return User{}, Invalid(fmt.Sprintf("keys[%d].target", i), "is the user's own number")
		}
	}
	before := u.Keys
	if len(keys) == 0 {
		keys = nil
	}
	u.Keys, u.UpdatedAt = keys, m.now()
	if err := m.store.UpdateUser(ctx, &u); err != nil {
		return User{}, err
	}
	m.Audit(ctx, a, "user.keys", "user:"+u.Username, before, keys)
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: "buttons"})
	m.NotifyUserDevices(ctx, u.ID, "buttons")
	return u, nil
}
