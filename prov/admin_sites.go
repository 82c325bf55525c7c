package prov

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

var (
	featureCodeRE = regexp.MustCompile(`^[*#][0-9*#]{1,7}$`)
	siteNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)
	languageRE    = regexp.MustCompile(`^$|^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$`)
	// emergencyRE also admits the short service numbers (112, 911, 999).
	emergencyRE = regexp.MustCompile(`^[0-9]{2,4}$`)
)

var profileDirRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ValidateSite checks a site before it is stored; errors name the field.
func ValidateSite(s *Site) error {
	s.Name = strings.TrimSpace(s.Name)
	if !siteNameRE.MatchString(s.Name) {
		return Invalid("name", "use 1-64 letters, digits, spaces and . _ -")
	}
	if err := ValidateParams("params", s.Params, false); err != nil {
		return err
	}
	for field, dir := range map[string]string{"profile_dirs.user_profiles": s.ProfileDirs.UserProfiles,
		"profile_dirs.contacts": s.ProfileDirs.Contacts, "profile_dirs.call_lists": s.ProfileDirs.CallLists} {
		if dir != "" && !profileDirRE.MatchString(dir) {
			return Invalid(field, "is one directory name: 1-32 letters, digits, _ and -")
		}
	}
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil || strings.EqualFold(s.TimeZone, "local") {
			return Invalid("time_zone", "is not an IANA time zone such as Europe/Berlin")
		}
	}
	if !languageRE.MatchString(s.Language) {
		return Invalid("language", "is a language tag such as en or de-DE")
	}
	for i, sn := range s.Subnets {
		if _, err := netip.ParsePrefix(strings.TrimSpace(sn)); err != nil {
			return Invalid(fmt.Sprintf("subnets[%d]", i), "is not a CIDR prefix")
		}
	}
	if err := validateLogin(s.Login); err != nil {
		return err
	}
	if err := validateAuthorized("authorized", s.Authorized); err != nil {
		return err
	}
	for i, n := range s.Emergency {
		if !ValidNumber(n) && !emergencyRE.MatchString(n) {
			return Invalid(fmt.Sprintf("emergency[%d]", i), "is not a number")
		}
	}
	fc := s.FeatureCodes
	if fc.Login != "" && !featureCodeRE.MatchString(fc.Login) {
		return Invalid("feature_codes.login", "is * or # followed by up to 7 digits, * or #")
	}
	if fc.Logout != "" && !featureCodeRE.MatchString(fc.Logout) {
		return Invalid("feature_codes.logout", "is * or # followed by up to 7 digits, * or #")
	}
	if fc.Login != "" && fc.Login == fc.Logout {
		return Invalid("feature_codes.logout", "must differ from the login code")
	}
	seen := map[string]string{"login": fc.Login, "logout": fc.Logout}
	for _, c := range []struct{ name, code string }{{"dnd", fc.DND}, {"forward", fc.Forward}} {
		if c.code == "" {
			continue
		}
		if !featureCodeRE.MatchString(c.code) {
			return Invalid("feature_codes."+c.name, "is * or # followed by up to 7 digits, * or #")
		}
		for other, code := range seen {
			// A prefix would shadow: the login code takes what follows it.
			if code != "" && (strings.HasPrefix(c.code, code) || strings.HasPrefix(code, c.code)) {
				return Invalid("feature_codes."+c.name, "must not begin with the "+other+" code nor it with this")
			}
		}
		seen[c.name] = c.code
	}
	if _, ok := s.Trunk.HostPort(); s.Trunk.Address != "" && !ok {
		return Invalid("trunk.address", "is a host[:port] or a sip: URI of one")
	}
	return nil
}

func validateLogin(p LoginPolicy) error {
	switch p.OnePerUser {
	case "", "replace", "deny", "allow":
	default:
		return Invalid("login.one_per_user", "is replace, deny or allow")
	}
	if p.AutomaticLogout < 0 || p.AutomaticLogout > 7*24*60 {
		return Invalid("login.automatic_logout", "is minutes between 0 (never) and 10080")
	}
	if p.MaxSessionMinutes < 0 {
		return Invalid("login.max_session_minutes", "must not be negative")
	}
	if _, _, ok := parseHHMM(p.DailyLogout); p.DailyLogout != "" && !ok {
		return Invalid("login.daily_logout", "is a time HH:MM")
	}
	if p.DefaultOnly && p.DefaultUser == "" {
		return Invalid("login.default_user", "is required when default_only is set")
	}
	return nil
}

// validateAuthorized checks the numbers a locked phone may call.
func validateAuthorized(field string, as []AuthorizedNumber) error {
	if len(as) > MaxAuthorizedNumbers {
		return Invalid(field, fmt.Sprintf("at most %d numbers", MaxAuthorizedNumbers))
	}
	for i, a := range as {
		if strings.TrimSpace(a.Description) == "" {
			return Invalid(fmt.Sprintf("%s[%d].description", field, i), "is required")
		}
		if !ValidNumber(a.Number) {
			return Invalid(fmt.Sprintf("%s[%d].number", field, i), "is not an extension or E.164 number")
		}
	}
	return nil
}

// CreateSite validates and stores a new site.
func (m *Manager) CreateSite(ctx context.Context, s Site, a Actor) (Site, error) {
	if err := m.validateSiteRefs(ctx, &s); err != nil {
		return Site{}, err
	}
	s.ID, s.UpdatedAt = 0, m.now()
	if err := m.store.CreateSite(ctx, &s); errors.Is(err, ErrConflict) {
		return Site{}, &ConflictError{Field: "name", Msg: "a site with this name exists"}
	} else if err != nil {
		return Site{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventSiteChanged})
	m.Audit(ctx, a, "site.create", SiteObject(s.ID), nil, siteRecord(s))
	return s, nil
}

func (m *Manager) validateSiteRefs(ctx context.Context, s *Site) error {
	if err := CheckVendorParams(m.params, "params", s.Params); err != nil {
		return err
	}
	if err := ValidateSite(s); err != nil {
		return err
	}
	if s.Login.DefaultUser != "" {
		if _, err := m.store.GetUser(ctx, s.Login.DefaultUser); errors.Is(err, ErrNotFound) {
			return Invalid("login.default_user", "no such user")
		} else if err != nil {
			return err
		}
	}
	return nil
}

// UpdateSite replaces the site with id by s (ID and UpdatedAt are set
// here) and re-provisions every device of the site: the login policy and
// the authorized numbers are rendered to them.
func (m *Manager) UpdateSite(ctx context.Context, id int64, s Site, a Actor) (Site, error) {
	before, err := m.store.GetSite(ctx, id)
	if err != nil {
		return Site{}, err
	}
	if err := m.validateSiteRefs(ctx, &s); err != nil {
		return Site{}, err
	}
	s.ID = id
	if err := m.store.UpdateSite(ctx, &s); errors.Is(err, ErrConflict) {
		return Site{}, &ConflictError{Field: "name", Msg: "a site with this name exists"}
	} else if err != nil {
		return Site{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventSiteChanged})
	devs, _, err := m.store.ListDevices(ctx, DeviceQuery{})
	if err == nil {
		for _, d := range devs {
			if d.SiteID == id {
				m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "site_changed"})
			}
		}
	}
	m.Audit(ctx, a, "site.update", SiteObject(id), siteRecord(before), siteRecord(s))
	return s, nil
}

// siteRecord is a site as the audit log keeps it: no trunk password.
func siteRecord(s Site) Site {
	if s.Trunk.Password != "" {
		s.Trunk.Password = "(set)"
	}
	return s
}
