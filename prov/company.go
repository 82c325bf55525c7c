package prov

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// CompanyEntry is one colleague in the company directory.
type CompanyEntry struct {
	Name      string
	FirstName string
	LastName  string
	Username  string
	Numbers   []string
	Site      string
}

// companyMax bounds one company-directory answer.
const companyMax = 500

// CompanyDirectory lists the active users with a number that viewer may
// see under their directory scope (seed 001: "all", or the name of one
// site), matching search, by last then first name; at most companyMax.
func CompanyDirectory(ctx context.Context, st Store, viewer User, search string) ([]CompanyEntry, error) {
	all, err := CompanyAll(ctx, st, search)
	if err != nil {
		return nil, err
	}
	return all.VisibleTo(viewer), nil
}

// CompanyList is every active user with a number, sorted, before a
// viewer's scope: what one read of the store gives, shared read-only (the
// files package caches it until the users change).
type CompanyList struct {
	sites   []Site
	entries []companyRow
	// all and bySite are the answers of VisibleTo, built once with the
	// list and shared by every viewer: a copy per logged-in phone's view
	// was 2,000 copies of the directory in a boot storm's heap.
	all    []CompanyEntry
	bySite map[int64][]CompanyEntry
}

type companyRow struct {
	CompanyEntry
	siteID int64
}

// CompanyAll reads the company directory matching search, before any
// viewer's scope.
func CompanyAll(ctx context.Context, st Store, search string) (*CompanyList, error) {
	sites, err := st.ListSites(ctx)
	if err != nil {
		return nil, fmt.Errorf("company directory: %w", err)
	}
	siteName := map[int64]string{}
	for _, s := range sites {
		siteName[s.ID] = s.Name
	}
	users, _, err := st.ListUsers(ctx, UserQuery{Search: strings.TrimSpace(search), Status: StatusActive})
	if err != nil {
		return nil, fmt.Errorf("company directory: %w", err)
	}
	nums, err := st.AllNumbers(ctx)
	if err != nil {
		return nil, fmt.Errorf("company directory: %w", err)
	}
	byUser := map[int64][]string{}
	for n, id := range nums {
		byUser[id] = append(byUser[id], n)
	}
	out := &CompanyList{sites: sites}
	for _, u := range users {
		ns := byUser[u.ID]
		if len(ns) == 0 {
			continue
		}
		sort.Strings(ns)
		out.entries = append(out.entries, companyRow{siteID: u.SiteID, CompanyEntry: CompanyEntry{
			Name:      strings.TrimSpace(u.FirstName + " " + u.LastName),
			FirstName: u.FirstName, LastName: u.LastName, Username: u.Username,
			Numbers: ns, Site: siteName[u.SiteID]}})
	}
	sort.Slice(out.entries, func(i, j int) bool {
		li, lj := lastWord(out.entries[i].Name), lastWord(out.entries[j].Name)
		if li != lj {
			return li < lj
		}
		return out.entries[i].Name < out.entries[j].Name
	})
	out.bySite = map[int64][]CompanyEntry{}
	for _, e := range out.entries {
		if len(out.all) < companyMax {
			out.all = append(out.all, e.CompanyEntry)
		}
		if len(out.bySite[e.siteID]) < companyMax {
			out.bySite[e.siteID] = append(out.bySite[e.siteID], e.CompanyEntry)
		}
	}
	return out, nil
}

// VisibleTo is the part of l that viewer's directory scope shows, at most
// companyMax entries, the viewer included; the slice is shared by every
// viewer of that scope: not to be modified.
func (l *CompanyList) VisibleTo(viewer User) []CompanyEntry {
	if viewer.DirectoryScope == "" || strings.EqualFold(viewer.DirectoryScope, "all") {
		return l.all
	}
	scopeID := int64(-1)
	for _, s := range l.sites {
		if strings.EqualFold(s.Name, viewer.DirectoryScope) {
			scopeID = s.ID
		}
	}
	if scopeID < 0 {
		return nil // a scope naming a site that no longer exists shows nobody
	}
	return l.bySite[scopeID]
}

func lastWord(s string) string {
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		return strings.ToLower(s[i+1:])
	}
	return strings.ToLower(s)
}

// The company directory on the phones. A Polycom phone has one local
// directory file and uploads it whole after any edit on the handset, so
// company entries written into it would come back as personal contacts
// (and pile up, and outlive a colleague who leaves). The phone's
// read-only corporate directory (dir.corp.*) is LDAP only, and hotdesk
// runs no LDAP server, so hotdesk marks them instead: a company entry is
// rendered with name and number only — no speed dial, label or phone
// setting — and an uploaded item that is still exactly that (its number
// a company number the user's file carried, and not one of the user's own
// contacts) is the company entry coming back, dropped before the upload
// becomes contacts. An item the user gave a speed dial, label, ring type,
// buddy watch… on the handset is theirs and kept; it then stands in for
// the company entry of that number.

// DirectoryItems is what the phone's directory file lists: the user's
// contacts, then each company number none of them has (name and number
// only).
func (v *View) DirectoryItems() []Contact {
	if len(v.Company) == 0 {
		return v.Contacts
	}
	self := v.CompanySelf()
	mine := make(map[string]bool, len(v.Contacts))
	for _, c := range v.Contacts {
		mine[c.Number] = true
	}
	out := append(make([]Contact, 0, len(v.Contacts)+len(v.Company)), v.Contacts...)
	for _, e := range v.Company {
		if e.Username == self {
			continue
		}
		for _, n := range e.Numbers {
			if mine[n] {
				continue
			}
			mine[n] = true
			out = append(out, Contact{Position: len(out) + 1, FirstName: e.FirstName, LastName: e.LastName, Number: n})
		}
	}
	return out
}

// CompanySelf is the username View.Company leaves out: the user's own
// entry is in the shared list but not in their directory.
func (v *View) CompanySelf() string {
	if v.User == nil {
		return ""
	}
	return v.User.Username
}
