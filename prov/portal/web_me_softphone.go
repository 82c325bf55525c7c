package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"hotdesk/prov"
)

// The browser softphone (user portal): a page whose script registers over
// SIP over WebSocket as the user's number, with a credential minted for
// this portal session (POST /api/v1/me/softphone) and revoked when the
// session ends; calls carry WebRTC media, bridged to the phones by the
// daemon. The user picks their call mode on the Home page (POST
// /me/call-mode), among those the admin allows.

// SoftphoneSIP is where and how the softphone registers.
type SoftphoneSIP struct {
	// WSURL is the registrar's WebSocket URL; "{host}" stands for the host
	// name the portal was reached at.
	WSURL      string
	Domain     string
	ICEServers []ICEServer
}

// ICEServer is a STUN or TURN server as RTCPeerConnection takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// softphoneCSP lets the softphone's script reach the registrar's
// WebSocket (another port: 'self' does not cover it).
const softphoneCSP = "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'"

func (w *web) softphoneRoutes() {
	w.handle("GET /me/softphone", roleUser, menuSoftphone, w.softphonePage)
	w.handle("POST /me/call-mode", roleUser, menuNone, w.setCallMode)
	w.meAPIFor("POST /api/v1/me/softphone", menuSoftphone, w.apiSoftphone)
	w.sess.onEnd = func(ctx context.Context, s prov.WebSession) {
		if w.d.Softphone != nil {
			// Not cut short by the request's end: the revocation is relayed.
			w.d.Softphone.Ended(context.WithoutCancel(ctx), s)
		}
	}
}

func (w *web) softphonePage(rw http.ResponseWriter, r *http.Request, q *request) {
	rw.Header().Set("Content-Security-Policy", softphoneCSP)
	p := userPage(q, "Softphone", string(menuSoftphone))
	w.render(rw, r, http.StatusOK, "me_softphone.html", p)
}

type softphoneView struct {
	WSURL      string      `json:"ws_url"`
	Domain     string      `json:"domain"`
	Username   string      `json:"username"`
	Password   string      `json:"password"`
	Number     string      `json:"number"`
	Expires    time.Time   `json:"expires"`
	ICEServers []ICEServer `json:"ice_servers"`
}

// apiSoftphone mints this portal session's softphone credential.
func (w *web) apiSoftphone(rw http.ResponseWriter, r *http.Request, q *request) {
	cfg := w.d.SoftphoneSIP
	if w.d.Softphone == nil || cfg.WSURL == "" {
		writeError(rw, http.StatusServiceUnavailable, "the softphone is not available (no sip.listen ws:// entry)", "")
		return
	}
	line, err := w.d.Softphone.Mint(r.Context(), q.user, q.s.Key, q.s.Created.Add(w.cfg.SessionMax), q.actor(r))
	if err != nil {
		var fe *prov.FieldError
		switch {
		case errors.Is(err, prov.ErrDenied):
			writeError(rw, http.StatusForbidden, "the softphone is not allowed for this user", "")
		case errors.As(err, &fe):
			writeError(rw, http.StatusConflict, "no number to register: ask your administrator for one", fe.Field)
		default:
			w.log.Error("softphone credential", "err", err)
			writeError(rw, http.StatusInternalServerError, "internal error", "")
		}
		return
	}
	ice := cfg.ICEServers
	if ice == nil {
		ice = []ICEServer{}
	}
	writeJSON(rw, http.StatusOK, softphoneView{WSURL: cfg.WSURL, Domain: cfg.Domain, Username: line.Username,
		Password: line.Password, Number: line.Number, Expires: line.Expires, ICEServers: ice})
}

// setCallMode is the user's pick of None / Call Control / Softphone /
// Both, among the modes the admin allows. Audited (as a user change).
func (w *web) setCallMode(rw http.ResponseWriter, r *http.Request, q *request) {
	mode := strings.TrimSpace(r.PostFormValue("call_mode"))
	if !slices.Contains(prov.AllowedCallModes(q.user), mode) {
		w.redirect(rw, r, q.s, "/me/", "That mode is not allowed for you.")
		return
	}
	pa := q.user.Portal
	pa.CallMode = mode
	if _, err := w.mgr.UpdateUser(r.Context(), q.user.Username, prov.UserPatch{Portal: &pa}, q.actor(r)); err != nil {
		w.log.Error("call mode", "err", err)
		w.redirect(rw, r, q.s, "/me/", "The mode could not be saved.")
		return
	}
	w.redirect(rw, r, q.s, "/me/", "Call mode saved.")
}
