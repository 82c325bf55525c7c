package files

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"

	"hotdesk/prov"
)

// Uploads of vendors whose settings files are "key = value" lines
// (Yealink's <mac>-local.cfg: what the user changed on the phone or its
// web page). They are stored, versioned and merged as Polycom's
// <MAC>-phone.cfg is, each parameter checked by the same intent: the
// phone owns its preferences, never a secret, an address, the lines or
// the provisioning set-up.

// KVUploadName is the stored name of such an upload.
const KVUploadName = "local.cfg"

// maxKVLines bounds the lines read from one upload.
const maxKVLines = 20000

// ParseKVConfig reads a "key = value" file: '#' comments, an optional
// "#!version:…" header, blank lines; a line without '=' is an error.
func ParseKVConfig(data []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		if n > maxKVLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrMalformed, maxKVLines)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !prov.ValidParamName(k) {
			return nil, fmt.Errorf("%w: line %d is not key = value", ErrMalformed, n)
		}
		m[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}

// kvOwnedPrefixes are the parameters a key = value phone may set.
var kvOwnedPrefixes = []string{
	"features.", "phone_setting.", "lang.", "local_time.", "linekey.", "memorykey.", "programablekey.",
	"expansion_module.", "ringtone.", "voice.", "screensaver.", "wallpaper", "directory_setting.",
	"forward.", "call_waiting.", "custom_softkey", "softkey.", "super_search.", "auto_redial.",
}

// kvNotOwned are names under those prefixes the server decides: the locked
// profile, and whether a check-sync reboots the phone.
var kvNotOwned = []string{"phone_setting.phone_lock", "phone_setting.emergency", "features.action_uri"}

// KVUploadRefusal is why a phone may not set name in a key = value upload
// (a RefusedXxx reason), or "".
func KVUploadRefusal(name string) string {
	l := strings.ToLower(name)
	if prov.SecretParam(name) || strings.Contains(l, "pin") || strings.Contains(l, "user_name") ||
		strings.Contains(l, "auth_name") || strings.Contains(l, "username") {
		return RefusedSecret
	}
	if strings.HasPrefix(l, "static.") || strings.HasPrefix(l, "account.") || strings.Contains(l, "auto_provision") {
		return RefusedProvisioning
	}
	for _, s := range strings.FieldsFunc(l, func(r rune) bool { return r == '.' || r == '_' }) {
		if addressSegments[s] || s == "url" || s == "uri" || s == "server" || s == "proxy" {
			return RefusedAddress
		}
	}
	for _, p := range kvNotOwned {
		if strings.HasPrefix(l, p) {
			return RefusedNotPhoneOwned
		}
	}
	for _, p := range kvOwnedPrefixes {
		if strings.HasPrefix(l, p) {
			return ""
		}
	}
	return RefusedNotPhoneOwned
}

// SplitKVUpload keeps the parameters a phone may set and renders them
// back as the file to store.
func SplitKVUpload(data []byte) (ConfigUpload, error) {
	m, err := ParseKVConfig(data)
	if err != nil {
		return ConfigUpload{}, err
	}
	up := ConfigUpload{Params: map[string]string{}}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("#!version:1.0.0.1\n")
	for _, k := range names {
		if why := KVUploadRefusal(k); why != "" {
			up.Refused = append(up.Refused, RefusedParam{Name: k, Reason: why})
			continue
		}
		up.Params[k] = m[k]
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	up.Data = b.Bytes()
	return up, nil
}
