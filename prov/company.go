package prov

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// CompanyEntry is one colleague in the company directory.
type CompanyEntry struct {
	Name     string
	Username string
	Numbers  []string
	Site     string
}

// companyMax bounds one company-directory answer.
const companyMax = 500

// CompanyDirectory lists the active users with a number that viewer may
// see under their directory scope (seed 001: "all", or the name of one
// site), matching search, by last then first name; at most companyMax.
func CompanyDirectory(ctx context.Context, st Store, viewer User, search string) ([]CompanyEntry, error) {
	sites, err := st.ListSites(ctx)
	if err != nil {
		return nil, fmt.Errorf("company directory: %w", err)
	}
	siteName := map[int64]string{}
	scopeID := int64(-1) // all
	for _, s := range sites {
		siteName[s.ID] = s.Name
		if viewer.DirectoryScope != "" && !strings.EqualFold(viewer.DirectoryScope, "all") &&
			strings.EqualFold(s.Name, viewer.DirectoryScope) {
			scopeID = s.ID
		}
	}
	if viewer.DirectoryScope != "" && !strings.EqualFold(viewer.DirectoryScope, "all") && scopeID < 0 {
		return nil, nil // a scope naming a site that no longer exists shows nobody
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
	var out []CompanyEntry
	for _, u := range users {
		if scopeID >= 0 && u.SiteID != scopeID || len(byUser[u.ID]) == 0 {
			continue
		}
		ns := byUser[u.ID]
		sort.Strings(ns)
		out = append(out, CompanyEntry{Name: strings.TrimSpace(u.FirstName + " " + u.LastName), Username: u.Username,
			Numbers: ns, Site: siteName[u.SiteID]})
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := lastWord(out[i].Name), lastWord(out[j].Name)
		if li != lj {
			return li < lj
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > companyMax {
		out = out[:companyMax]
	}
	return out, nil
}

func lastWord(s string) string {
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		return strings.ToLower(s[i+1:])
	}
	return strings.ToLower(s)
}
