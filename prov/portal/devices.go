package portal

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"

	"hotdesk/prov"
)

// deviceView is a device as the API shows it: no PINs or passwords.
type deviceView struct {
	prov.Device
	// AssignedUser is the user name of the desk phone's user, "" for none.
	AssignedUser string `json:"assigned_user"`
}

// deviceList is one page of devices.
type deviceList struct {
	Total  int          `json:"total"`
	Offset int          `json:"offset"`
	Limit  int          `json:"limit"`
	Items  []deviceView `json:"items"`
}

// deviceCreate is the POST /devices body.
type deviceCreate struct {
	MAC    string          `json:"mac"`
	Vendor string          `json:"vendor"`
	Model  string          `json:"model"`
	SiteID int64           `json:"site_id"`
	Kind   prov.DeviceKind `json:"kind"`
}

// devicePatch is the PATCH /devices/{mac} body.
type devicePatch struct {
	Vendor     *string                  `json:"vendor"`
	Model      *string                  `json:"model"`
	SiteID     *int64                   `json:"site_id"`
	Authorized *[]prov.AuthorizedNumber `json:"authorized"`
	Params     *map[string]string       `json:"params"`
	Status     *prov.DeviceStatus       `json:"status"`
}

// assignBody is the POST /devices/{mac}/assign body.
type assignBody struct {
	User string          `json:"user"`
	Kind prov.DeviceKind `json:"kind"`
	// Number, optional, is given to the user in the same transaction.
	Number string `json:"number,omitempty"`
}

// assignView is the answer to an assignment: a managed phone's PINs are
// shown here once; a third-party phone gets the settings to type in.
type assignView struct {
	Device        deviceView   `json:"device"`
	User          string       `json:"user"`
	Kind          string       `json:"kind"`
	DeploymentPIN string       `json:"deployment_pin,omitempty"`
	SecurityPIN   string       `json:"security_pin,omitempty"`
	ThirdParty    *sipSettings `json:"third_party,omitempty"`
}

// sipSettings are what a person types into a third-party phone.
type sipSettings struct {
	Server    string   `json:"server"`
	Port      int      `json:"port"`
	Transport string   `json:"transport"`
	UserID    string   `json:"user_id"`
	Numbers   []string `json:"numbers"`
	// Password is present only with ?reveal=1, and every reveal is audited.
	Password string `json:"password,omitempty"`
	CACert   string `json:"ca_cert,omitempty"`
}

// checkSyncBody is the optional POST /devices/{mac}/check-sync body.
type checkSyncBody struct {
	Reboot bool `json:"reboot"`
}

// claimBody is the POST /devices/{mac}/claim body.
type claimBody struct {
	PIN string `json:"pin"`
	// SecurityPIN is the phone's security PIN, needed when the phone is
	// another user's desk phone (that user gives it).
	SecurityPIN string `json:"security_pin,omitempty"`
}

func (a *api) deviceView(ctx context.Context, d prov.Device) deviceView {
	v := deviceView{Device: d}
	if d.AssignedUserID != 0 {
		if u, err := a.d.Store.GetUserByID(ctx, d.AssignedUserID); err == nil {
			v.AssignedUser = u.Username
		}
	}
	if v.Authorized == nil {
		v.Authorized = []prov.AuthorizedNumber{}
	}
	return v
}

// answerDevice answers with d as the API shows it, or with err of the
// operation that returned d. A 201 names the new device in Location.
func (a *api) answerDevice(w http.ResponseWriter, r *http.Request, code int, d prov.Device, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if code == http.StatusCreated {
		w.Header().Set("Location", "/api/v1/devices/"+d.MAC)
	}
	writeJSON(w, code, a.deviceView(r.Context(), d))
}

func (a *api) listDevices(w http.ResponseWriter, r *http.Request, _ principal) {
	offset, limit, ok := a.pageParams(w, r)
	if !ok {
		return
	}
	ds, total, err := a.d.Store.ListDevices(r.Context(), prov.DeviceQuery{Search: r.URL.Query().Get("q"),
		Offset: offset, Limit: limit})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := deviceList{Total: total, Offset: offset, Limit: limit, Items: []deviceView{}}
	for _, d := range ds {
		out.Items = append(out.Items, a.deviceView(r.Context(), d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) createDevice(w http.ResponseWriter, r *http.Request, p principal) {
	var b deviceCreate
	if !a.decode(w, r, &b) {
		return
	}
	d, err := a.mgr.CreateDevice(r.Context(), prov.DeviceInput{MAC: b.MAC, Vendor: b.Vendor, Model: b.Model,
		SiteID: b.SiteID, Kind: b.Kind}, p.actor())
	a.answerDevice(w, r, http.StatusCreated, d, err)
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request, _ principal) {
	mac, ok := prov.NormalizeMAC(r.PathValue("mac"))
	if !ok {
		writeError(w, http.StatusNotFound, "not found", "")
		return
	}
	d, err := a.d.Store.GetDevice(r.Context(), mac)
	a.answerDevice(w, r, http.StatusOK, d, err)
}

func (a *api) patchDevice(w http.ResponseWriter, r *http.Request, p principal) {
	var b devicePatch
	if !a.decode(w, r, &b) {
		return
	}
	d, err := a.mgr.UpdateDevice(r.Context(), r.PathValue("mac"), prov.DevicePatch{Vendor: b.Vendor, Model: b.Model,
		SiteID: b.SiteID, Authorized: b.Authorized, Params: b.Params, Status: b.Status}, p.actor())
	a.answerDevice(w, r, http.StatusOK, d, err)
}

func (a *api) assignDevice(w http.ResponseWriter, r *http.Request, p principal) {
	var b assignBody
	if !a.decode(w, r, &b) {
		return
	}
	if b.User == "" {
		writeError(w, http.StatusBadRequest, "is required", "user")
		return
	}
	as, err := a.mgr.AssignDevice(r.Context(), prov.AssignInput{MAC: r.PathValue("mac"), Username: b.User,
		Kind: b.Kind, Number: b.Number}, p.actor())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := assignView{Device: a.deviceView(r.Context(), as.Device), User: as.User.Username, Kind: string(as.Device.Kind),
		DeploymentPIN: as.DeploymentPIN, SecurityPIN: as.SecurityPIN}
	if as.Device.Kind == prov.DeviceThirdParty {
		s := a.sipSettings(r, as.Device, prov.SIPAccount{Numbers: as.Numbers, UserID: firstNumber(as.Numbers)})
		v.ThirdParty = &s
	}
	writeJSON(w, http.StatusOK, v)
}

func firstNumber(nums []string) string {
	if len(nums) == 0 {
		return ""
	}
	return trimPlus(nums[0])
}

func trimPlus(s string) string {
	if len(s) > 0 && s[0] == '+' {
		return s[1:]
	}
	return s
}

// sipSettings fills the server part from the configuration, the device's
// site, or the host the API was reached at.
func (a *api) sipSettings(r *http.Request, d prov.Device, acc prov.SIPAccount) sipSettings {
	s, err := thirdPartySettings(r, a.d, a.cfg.ThirdParty, d, acc)
	if err != nil {
		a.log.Warn("third-party CA certificate unreadable", "file", a.cfg.ThirdParty.CACertFile, "err", err)
	}
	return s
}

// thirdPartySettings is what a person types into a third-party phone, for
// the API and the web portal alike: the server is the configured one, else
// the device's site's domain, else the host r reached; the transport and
// port are those SIP listens on (sipEndpoint). The error is an unreadable
// CA certificate file; the settings are complete without it.
func thirdPartySettings(r *http.Request, deps Deps, tp ThirdPartyConfig, d prov.Device,
	acc prov.SIPAccount) (sipSettings, error) {
	var ls []Listener
	if deps.Listeners != nil {
		ls = deps.Listeners()
	}
	transport, port := sipEndpoint(tp, ls)
	s := sipSettings{Server: tp.Server, Port: port, Transport: transport, UserID: acc.UserID,
		Numbers: orEmpty(acc.Numbers), Password: acc.Password}
	if s.Server == "" && d.SiteID != 0 {
		if site, err := deps.Store.GetSite(r.Context(), d.SiteID); err == nil {
			s.Server = site.Domain
		}
	}
	if s.Server == "" {
		s.Server = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			s.Server = h
		}
	}
	if tp.CACertFile == "" {
		return s, nil
	}
	b, err := os.ReadFile(tp.CACertFile)
	if err != nil {
		return s, err
	}
	s.CACert = string(b)
	return s, nil
}

// sipEndpoint is the transport and port a third-party phone must use: a
// configured value wins (a port forward in front of the daemon), else what
// the SIP listeners are bound to — the configured transport's listener, or
// UDP, TCP, TLS in that order — so a daemon moved off 5060 says so. 5060 and
// udp only when no listener is known (an API without the SIP room).
func sipEndpoint(tp ThirdPartyConfig, ls []Listener) (string, int) {
	transport, port := tp.Transport, tp.Port
	for _, want := range []string{tp.Transport, "udp", "tcp", "tls"} {
		if want == "" || (tp.Transport != "" && want != tp.Transport) {
			continue
		}
		for _, l := range ls {
			if l.Name != "sip" || l.Proto != want {
				continue
			}
			_, p, err := net.SplitHostPort(l.Addr)
			n, perr := strconv.Atoi(p)
			if err != nil || perr != nil {
				continue
			}
			if port == 0 {
				port = n
			}
			return want, port
		}
	}
	if transport == "" {
		transport = "udp"
	}
	if port == 0 {
		port = 5060
	}
	return transport, port
}

func (a *api) deviceSIPAccount(w http.ResponseWriter, r *http.Request, p principal) {
	acc, _, err := a.mgr.SIPAccountOf(r.Context(), r.PathValue("mac"), boolParam(r, "reveal"), p.actor())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d, err := a.mgr.Device(r.Context(), r.PathValue("mac"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.sipSettings(r, d, acc))
}

func (a *api) unassignDevice(w http.ResponseWriter, r *http.Request, p principal) {
	d, err := a.mgr.UnassignDevice(r.Context(), r.PathValue("mac"), p.actor())
	a.answerDevice(w, r, http.StatusOK, d, err)
}

func (a *api) checkSync(w http.ResponseWriter, r *http.Request, p principal) {
	var b checkSyncBody
	if r.ContentLength != 0 && !a.decode(w, r, &b) {
		return
	}
	d, err := a.mgr.CheckSync(r.Context(), r.PathValue("mac"), b.Reboot, p.actor())
	a.answerDevice(w, r, http.StatusAccepted, d, err)
}

func (a *api) verifyDevice(w http.ResponseWriter, r *http.Request, p principal) {
	d, err := a.mgr.VerifyDevice(r.Context(), r.PathValue("mac"), p.actor())
	a.answerDevice(w, r, http.StatusOK, d, err)
}

func (a *api) resetDeviceCredentials(w http.ResponseWriter, r *http.Request, p principal) {
	d, err := a.mgr.ResetDeviceCredentials(r.Context(), r.PathValue("mac"), p.actor())
	a.answerDevice(w, r, http.StatusOK, d, err)
}

func (a *api) claimDevice(w http.ResponseWriter, r *http.Request, p principal) {
	var b claimBody
	if !a.decode(w, r, &b) {
		return
	}
	d, err := a.mgr.ClaimByPIN(r.Context(), r.PathValue("mac"), b.PIN, b.SecurityPIN, p.Remote)
	a.answerDevice(w, r, http.StatusOK, d, err)
}
