package portal

import (
	"net/http"
	"strconv"

	"hotdesk/prov"
)

// siteView is a site as the API shows it: the trunk password is write-only.
type siteView struct {
	prov.Site
	Trunk trunkView `json:"trunk"`
}

// trunkView hides the trunk password.
type trunkView struct {
	Address     string `json:"address"`
	Username    string `json:"username"`
	PasswordSet bool   `json:"password_set"`
}

// siteList is every site.
type siteList struct {
	Items []siteView `json:"items"`
}

func viewSite(s prov.Site) siteView {
	for _, p := range []*[]string{&s.Subnets, &s.Emergency} {
		if *p == nil {
			*p = []string{}
		}
	}
	if s.Authorized == nil {
		s.Authorized = []prov.AuthorizedNumber{}
	}
	return siteView{Site: s, Trunk: trunkView{Address: s.Trunk.Address, Username: s.Trunk.Username,
		PasswordSet: s.Trunk.Password != ""}}
}

func (a *api) listSites(w http.ResponseWriter, r *http.Request, _ principal) {
	sites, err := a.d.Store.ListSites(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := siteList{Items: []siteView{}}
	for _, s := range sites {
		out.Items = append(out.Items, viewSite(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) createSite(w http.ResponseWriter, r *http.Request, p principal) {
	var s prov.Site
	if !a.decodeSite(w, r, &s) {
		return
	}
	s, err := a.mgr.CreateSite(r.Context(), s, p.actor())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/sites/"+strconv.FormatInt(s.ID, 10))
	writeJSON(w, http.StatusCreated, viewSite(s))
}

// storedSite reads the site the path's {id} names; it answers 404 itself
// and returns false.
func (a *api) storedSite(w http.ResponseWriter, r *http.Request) (int64, prov.Site, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not found", "")
		return 0, prov.Site{}, false
	}
	s, err := a.d.Store.GetSite(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return 0, prov.Site{}, false
	}
	return id, s, true
}

func (a *api) getSite(w http.ResponseWriter, r *http.Request, _ principal) {
	if _, s, ok := a.storedSite(w, r); ok {
		writeJSON(w, http.StatusOK, viewSite(s))
	}
}

// patchSite merges the body into the stored site: absent fields stay,
// nested objects merge, arrays are replaced.
func (a *api) patchSite(w http.ResponseWriter, r *http.Request, p principal) {
	id, s, ok := a.storedSite(w, r)
	if !ok || !a.decodeSite(w, r, &s) {
		return
	}
	s, err := a.mgr.UpdateSite(r.Context(), id, s, p.actor())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewSite(s))
}

// siteBody is what POST and PATCH accept: a site without its ID and
// timestamps, which the server sets.
type siteBody struct {
	Name         *string                  `json:"name"`
	Domain       *string                  `json:"domain"`
	TimeZone     *string                  `json:"time_zone"`
	Language     *string                  `json:"language"`
	Subnets      *[]string                `json:"subnets"`
	Login        *prov.LoginPolicy        `json:"login"`
	Authorized   *[]prov.AuthorizedNumber `json:"authorized"`
	Emergency    *[]string                `json:"emergency"`
	FeatureCodes *prov.FeatureCodes       `json:"feature_codes"`
	Trunk        *prov.Trunk              `json:"trunk"`
	Params       *map[string]string       `json:"params"`
	ProfileDirs  *prov.ProfileDirs        `json:"profile_dirs"`
}

// decodeSite merges the body into s: absent fields stay, the members of
// login, feature_codes, trunk and profile_dirs merge, arrays are replaced.
func (a *api) decodeSite(w http.ResponseWriter, r *http.Request, s *prov.Site) bool {
	var b siteBody
	raw, ok := a.decodeRaw(w, r, &b)
	if !ok {
		return false
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.Name, b.Name)
	set(&s.Domain, b.Domain)
	set(&s.TimeZone, b.TimeZone)
	set(&s.Language, b.Language)
	if b.Subnets != nil {
		s.Subnets = *b.Subnets
	}
	if b.Authorized != nil {
		s.Authorized = *b.Authorized
	}
	if b.Emergency != nil {
		s.Emergency = *b.Emergency
	}
	if b.Params != nil {
		s.Params = *b.Params
	}
	for name, dst := range map[string]any{"login": &s.Login, "feature_codes": &s.FeatureCodes, "trunk": &s.Trunk,
		"profile_dirs": &s.ProfileDirs} {
		if err := mergeInto(raw, name, dst); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), name)
			return false
		}
	}
	return true
}
