package portal

import (
	"net/http"

	"hotdesk/prov"
)

// param is a query parameter in the OpenAPI document.
type param struct {
	Name, Type, Desc string
}

// csvBody marks a route whose body is text/csv.
type csvBody struct{}

// wavBody marks a route whose request or success body is audio/wav.
type wavBody struct{}

// noBody marks a success answer without a body (204).
type noBody struct{}

// route is one API operation: the mux pattern, its handler and what the
// OpenAPI document says about it. The document is generated from this
// table, and a test checks the table against the mux and live answers.
type route struct {
	Method, Path, Summary string
	Auth                  authLevel
	Query                 []param
	// Body is the zero value of the request body type; nil for none.
	Body any
	// OK is the success status and Resp the zero value of its body type.
	OK   int
	Resp any
	// Also are other success statuses with the same body.
	Also    []int
	Errors  []int
	Handler func(http.ResponseWriter, *http.Request, principal)
}

var pageQuery = []param{{"offset", "integer", "index of the first item"}, {"limit", "integer", "page size"}}

func (a *api) routeTable() []route {
	e400, e404, e409 := http.StatusBadRequest, http.StatusNotFound, http.StatusConflict
	return []route{
		{Method: "GET", Path: "/api/v1/openapi.json", Summary: "This OpenAPI description", Auth: authNone,
			OK: 200, Resp: map[string]any{}, Handler: a.openAPI},
		{Method: "GET", Path: "/api/v1/status", Summary: "Counts and listeners (hotdeskd status)",
			OK: 200, Resp: statusView{}, Handler: a.status},
		{Method: "POST", Path: "/api/v1/tokens", Summary: "Create an API token for scripts (shown once)",
			Body: tokenBody{}, OK: 201, Resp: tokenView{}, Errors: []int{e400, 403}, Handler: a.createToken},
		{Method: "GET", Path: "/api/v1/tokens", Summary: "List API tokens: name, prefix and dates, never the secret",
			OK: 200, Resp: tokenList{}, Handler: a.listTokens},
		{Method: "POST", Path: "/api/v1/tokens/{id}/revoke", Summary: "Revoke an API token: refused from now on",
			OK: 200, Resp: prov.APIToken{}, Errors: []int{e400, e404}, Handler: a.revokeToken},

		{Method: "GET", Path: "/api/v1/users", Summary: "List users, paged, searchable, with chosen fields",
			Query: append([]param{{"q", "string", "search user name, names and email"},
				{"status", "string", "active or disabled"},
				{"fields", "string", "comma-separated fields to return"}}, pageQuery...),
			OK: 200, Resp: userList{}, Errors: []int{e400}, Handler: a.listUsers},
		{Method: "POST", Path: "/api/v1/users", Summary: "Create a user (user name defaults to the email)",
			Body: userCreate{}, OK: 201, Resp: userView{}, Errors: []int{e400, e409}, Handler: a.createUser},
		{Method: "POST", Path: "/api/v1/users/import", Summary: "Create users from CSV, with a per-row report",
			Query: []param{{"dry_run", "boolean", "validate and report only"},
				{"progress", "boolean", "stream NDJSON: {\"progress\":{phase,done,total}} lines while rows are prepared and stored, then {\"status\",\"body\"} with the plain answer"},
				{"welcome", "boolean", "send each created user a welcome e-mail (paced; 400 when mail is off)"}},
			Body: csvBody{}, OK: 201, Also: []int{200}, Resp: prov.ImportReport{}, Errors: []int{e400, 413, 415}, Handler: a.importUsers},
		{Method: "GET", Path: "/api/v1/users/{username}", Summary: "Get a user",
			OK: 200, Resp: userView{}, Errors: []int{e404}, Handler: a.getUser},
		{Method: "PATCH", Path: "/api/v1/users/{username}", Summary: "Update a user (absent fields stay)",
			Body: userPatch{}, OK: 200, Resp: userView{}, Errors: []int{e400, e404}, Handler: a.patchUser},
		{Method: "DELETE", Path: "/api/v1/users/{username}", Summary: "Refused: users are disabled, never deleted",
			OK: 405, Resp: apiError{}, Handler: a.deleteUser},
		{Method: "POST", Path: "/api/v1/users/{username}/disable",
			Summary: "Disable: end sessions, remove numbers, desk phones and features",
			OK:      200, Resp: userView{}, Errors: []int{e404}, Handler: a.disableUser},
		{Method: "POST", Path: "/api/v1/users/{username}/enable", Summary: "Re-enable (assignments are not restored)",
			OK: 200, Resp: userView{}, Errors: []int{e404}, Handler: a.enableUser},
		{Method: "POST", Path: "/api/v1/users/{username}/password-link",
			Summary: "E-mail the user a single-use, expiring link to set a new password (in their language)",
			OK:      202, Resp: passwordLinkView{}, Errors: []int{e400, e404, e409, 503}, Handler: a.sendPasswordLink},
		{Method: "PUT", Path: "/api/v1/users/{username}/keys",
			Summary: "Program the user's phone keys: BLF, speed dial, DND, call forward (replaces them all)",
			Body:    keysBody{}, OK: 200, Resp: userView{}, Errors: []int{e400, e404}, Handler: a.setKeys},
		{Method: "GET", Path: "/api/v1/users/{username}/voicemail",
			Summary: "A user's mailbox: counts, messages (never their audio) and whether a greeting is set",
			OK:      200, Resp: userVoicemailView{}, Errors: []int{e404}, Handler: a.userVoicemail},
		{Method: "DELETE", Path: "/api/v1/users/{username}/voicemail/greeting",
			Summary: "Remove a user's voicemail greeting (callers hear the tone), audited",
			OK:      204, Resp: noBody{}, Errors: []int{e404}, Handler: a.deleteUserGreeting},
		{Method: "GET", Path: "/api/v1/users/{username}/numbers", Summary: "A user's numbers",
			OK: 200, Resp: numbersView{}, Errors: []int{e404}, Handler: a.listNumbers},
		{Method: "POST", Path: "/api/v1/users/{username}/numbers", Summary: "Assign numbers (all or none)",
			Body: numbersBody{}, OK: 200, Resp: numbersView{}, Errors: []int{e400, e404, e409}, Handler: a.assignNumbers},
		{Method: "DELETE", Path: "/api/v1/users/{username}/numbers/{number}", Summary: "Unassign a number",
			OK: 200, Resp: numbersView{}, Errors: []int{e404}, Handler: a.unassignNumber},

		{Method: "GET", Path: "/api/v1/devices", Summary: "List devices, paged and searchable",
			Query: append([]param{{"q", "string", "search MAC, vendor, model, IP"}}, pageQuery...),
			OK:    200, Resp: deviceList{}, Errors: []int{e400}, Handler: a.listDevices},
		{Method: "POST", Path: "/api/v1/devices", Summary: "Add a device before it boots",
			Body: deviceCreate{}, OK: 201, Resp: deviceView{}, Errors: []int{e400, e409}, Handler: a.createDevice},
		{Method: "GET", Path: "/api/v1/devices/{mac}", Summary: "Get a device",
			OK: 200, Resp: deviceView{}, Errors: []int{e404}, Handler: a.getDevice},
		{Method: "PATCH", Path: "/api/v1/devices/{mac}", Summary: "Update a device; approve or deny a pending one",
			Body: devicePatch{}, OK: 200, Resp: deviceView{}, Errors: []int{e400, e404}, Handler: a.patchDevice},
		{Method: "POST", Path: "/api/v1/devices/{mac}/assign",
			Summary: "Make the phone a user's desk phone, optionally giving them a number in the same step (managed: PINs shown once; third_party: SIP settings)",
			Body:    assignBody{}, OK: 200, Resp: assignView{}, Errors: []int{e400, e409}, Handler: a.assignDevice},
		{Method: "POST", Path: "/api/v1/devices/{mac}/unassign",
			Summary: "Unassign: bindings removed, check-sync, back to the locked profile",
			OK:      200, Resp: deviceView{}, Errors: []int{e404}, Handler: a.unassignDevice},
		{Method: "POST", Path: "/api/v1/devices/{mac}/check-sync", Summary: "Tell the phone to re-provision or reboot",
			Body: checkSyncBody{}, OK: 202, Resp: deviceView{}, Errors: []int{e404}, Handler: a.checkSync},
		{Method: "POST", Path: "/api/v1/devices/{mac}/verify",
			Summary: "Confirm the phone holding the provisioning credentials is the real one: held lines go out, the identity conflict is cleared",
			OK:      200, Resp: deviceView{}, Errors: []int{e404}, Handler: a.verifyDevice},
		{Method: "POST", Path: "/api/v1/devices/{mac}/reset-credentials",
			Summary: "New provisioning credentials, handed out once more to the next fetch (a factory-reset phone)",
			OK:      200, Resp: deviceView{}, Errors: []int{e404}, Handler: a.resetDeviceCredentials},
		{Method: "GET", Path: "/api/v1/devices/{mac}/effective-config",
			Summary: "Every parameter the phone gets, its value and the precedence layer it came from (secrets masked)",
			OK:      200, Resp: []prov.Param{}, Errors: []int{e400, e404}, Handler: a.effectiveConfig},
		{Method: "GET", Path: "/api/v1/devices/{mac}/sip-account",
			Summary: "SIP settings of the phone's user; ?reveal=1 adds the password (audited)",
			Query:   []param{{"reveal", "boolean", "include the SIP password"}},
			OK:      200, Resp: sipSettings{}, Errors: []int{e400, e404}, Handler: a.deviceSIPAccount},
		{Method: "POST", Path: "/api/v1/devices/{mac}/claim", Auth: authOptional,
			Summary: "Zero-touch claim: the deployment PIN typed on the phone makes it the user's desk phone; a phone that is another user's needs its security PIN too (security_pin)",
			Body:    claimBody{}, OK: 200, Resp: deviceView{}, Errors: []int{401, 403, 429}, Handler: a.claimDevice},

		{Method: "GET", Path: "/api/v1/sites", Summary: "List sites",
			OK: 200, Resp: siteList{}, Handler: a.listSites},
		{Method: "POST", Path: "/api/v1/sites", Summary: "Create a site",
			Body: siteBody{}, OK: 201, Resp: siteView{}, Errors: []int{e400, e409}, Handler: a.createSite},
		{Method: "GET", Path: "/api/v1/sites/{id}", Summary: "Get a site",
			OK: 200, Resp: siteView{}, Errors: []int{e404}, Handler: a.getSite},
		{Method: "PATCH", Path: "/api/v1/sites/{id}", Summary: "Update a site (objects merge, arrays replace)",
			Body: siteBody{}, OK: 200, Resp: siteView{}, Errors: []int{e400, e404, e409}, Handler: a.patchSite},

		{Method: "GET", Path: "/api/v1/registrations", Summary: "Live registrations",
			OK: 200, Resp: registrationList{}, Handler: a.listRegistrations},
		{Method: "GET", Path: "/api/v1/sessions", Summary: "Login sessions (active; ?all=1 adds history)",
			Query: []param{{"device", "string", "MAC"}, {"user", "string", "user name"},
				{"all", "boolean", "include ended sessions"}, {"limit", "integer", "at most this many"}},
			OK: 200, Resp: sessionList{}, Errors: []int{e400}, Handler: a.listSessions},
		{Method: "POST", Path: "/api/v1/sessions", Auth: authOptional,
			Summary: "Log a user in on a phone (an admin may omit the password)",
			Body:    loginBody{}, OK: 201, Resp: sessionView{}, Errors: []int{e400, 401, 403, 429}, Handler: a.login},
		{Method: "GET", Path: "/api/v1/sessions/{id}", Summary: "Get a session",
			OK: 200, Resp: sessionView{}, Errors: []int{e404}, Handler: a.getSession},
		{Method: "DELETE", Path: "/api/v1/sessions/{id}", Summary: "Log out (reason admin)",
			OK: 200, Resp: sessionView{}, Errors: []int{e404}, Handler: a.logout},

		{Method: "GET", Path: "/api/v1/audit", Summary: "Audit log, newest first",
			Query: []param{{"actor", "string", "e.g. admin:root"}, {"action", "string", "e.g. user.disable"},
				{"object", "string", "e.g. user:alice"}, {"since", "string", "RFC 3339 time"},
				{"limit", "integer", "at most this many"}},
			OK: 200, Resp: auditList{}, Errors: []int{e400}, Handler: a.listAudit},
	}
}

// meRoutes documents the user's own routes under /api/v1/me, which the
// web portal serves (meAPIFor) behind the portal session and the menu
// access; a test checks them against what the web registers.
func meRoutes() []route {
	e400, e403, e404, e409 := http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict
	rs := []route{
		{Method: "GET", Path: "/api/v1/me/calls", Summary: "The user's calls in progress (Call Control) and the CSRF token",
			OK: 200, Resp: myCallsView{}, Errors: []int{e403}},
		{Method: "POST", Path: "/api/v1/me/calls", Summary: "Click-to-dial: ring the user's desk phone, then the target",
			Body: dialBody{}, OK: 201, Resp: prov.ControlledCall{}, Errors: []int{e400, e403, e404, e409, 503}},
		{Method: "DELETE", Path: "/api/v1/me/calls/{id}", Summary: "Hang up a call",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404, e409}},
		{Method: "POST", Path: "/api/v1/me/calls/{id}/hold", Summary: "Hold a call",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404, e409}},
		{Method: "POST", Path: "/api/v1/me/calls/{id}/resume", Summary: "Resume a held call",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404, e409}},
		{Method: "POST", Path: "/api/v1/me/calls/{id}/transfer", Summary: "Transfer a call (REFER)",
			Body: dialBody{}, OK: 204, Resp: noBody{}, Errors: []int{e400, e403, e404, e409}},
		{Method: "POST", Path: "/api/v1/me/softphone", Summary: "Mint this portal session's softphone SIP credential",
			OK: 200, Resp: softphoneView{}, Errors: []int{e403, e409, 503}},
		{Method: "GET", Path: "/api/v1/me/recordings",
			Summary: "Recordings the user may replay (own, site, listed numbers, all, per their rights), newest first",
			Query:   []param{{"offset", "integer", "index of the first item (next_offset of the previous page)"}, {"limit", "integer", "page size, 1–200 (50)"}},
			OK:      200, Resp: myRecordingList{}, Errors: []int{e400, e403}},
		{Method: "GET", Path: "/api/v1/me/recordings/{id}/audio", Summary: "Replay (Read) or download (Write) a recording, audited",
			Query: []param{{"download", "boolean", "as an attachment; needs Write"}},
			OK:    200, Resp: wavBody{}, Errors: []int{e403, e404}},
		{Method: "GET", Path: "/api/v1/me/voicemail", Summary: "The user's voicemail messages, newest first, and the CSRF token",
			OK: 200, Resp: myVoicemailList{}, Errors: []int{e403}},
		{Method: "GET", Path: "/api/v1/me/voicemail/{id}/audio", Summary: "A message's audio; marks it heard, audited",
			OK: 200, Resp: wavBody{}, Errors: []int{e403, e404}},
		{Method: "POST", Path: "/api/v1/me/voicemail/{id}/heard", Summary: "Mark a message heard (the lamp goes off), audited",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404}},
		{Method: "DELETE", Path: "/api/v1/me/voicemail/{id}", Summary: "Delete a message and its audio, audited",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404}},
		{Method: "PUT", Path: "/api/v1/me/voicemail/greeting", Summary: "Replace the greeting: an 8 kHz 16-bit mono WAV, audited",
			Body: wavBody{}, OK: 204, Resp: noBody{}, Errors: []int{e400, e403, e404, e409, 413}},
		{Method: "DELETE", Path: "/api/v1/me/voicemail/greeting", Summary: "Remove the greeting (callers hear the tone), audited",
			OK: 204, Resp: noBody{}, Errors: []int{e403, e404}},
	}
	for i := range rs {
		rs[i].Auth = authSession
	}
	return rs
}
