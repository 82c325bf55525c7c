package portal

import (
	"net/http"

	"hotdesk/prov"
)

// effectiveConfig answers GET /api/v1/devices/{mac}/effective-config: the
// precedence merge of the phone's files, one row per parameter.
func (a *api) effectiveConfig(w http.ResponseWriter, r *http.Request, _ principal) {
	if a.d.Effective == nil {
		writeError(w, http.StatusServiceUnavailable, "provisioning is not running", "")
		return
	}
	mac, ok := prov.NormalizeMAC(r.PathValue("mac"))
	if !ok {
		writeError(w, http.StatusBadRequest, "is not a MAC address (12 hex digits)", "mac")
		return
	}
	params, err := a.d.Effective.EffectiveConfig(r.Context(), mac)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if params == nil {
		params = []prov.Param{}
	}
	writeJSON(w, http.StatusOK, params)
}
