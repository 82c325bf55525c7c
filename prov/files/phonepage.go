package files

import (
	"crypto/hmac"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov"
)

// PhonePagesPath is the login door for the phone's own browser, relative
// to the provisioning path prefix.
const PhonePagesPath = "hotdesk/phone"

// Purposes of a phone-page form token: each works for one form only.
const (
	PhoneFormLogin    = "login"
	PhoneFormLogout   = "logout"
	PhoneFormPassword = "password"
)

// PhoneFormTTL is how long a form token a page hands out works: long
// enough to type a user ID and password on a keypad, short enough that a
// token read off the wire or a log is useless soon after.
const PhoneFormTTL = 10 * time.Minute

// PhonePageToken signs the device's login-page link with its own
// provisioning secret, so a link cannot be made up for another handset.
// The link only shows the page: every form on it carries its own
// expiring, single-purpose token (PhoneFormToken).
func PhonePageToken(d prov.Device) string {
	return phoneMAC(d, "hotdesk-phone-pages:"+d.MAC)
}

// CheckPhonePageToken reports whether t is the device's link token.
func CheckPhonePageToken(d prov.Device, t string) bool {
	return d.ProvPassword != "" && hmac.Equal([]byte(PhonePageToken(d)), []byte(t))
}

// PhoneFormToken is a token for one form (purpose) of one device's page,
// valid until now+PhoneFormTTL: "<expiry unix seconds>.<signature>".
func PhoneFormToken(d prov.Device, purpose string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(PhoneFormTTL).Unix(), 10)
	return exp + "." + phoneMAC(d, phoneFormMsg(d, purpose, exp))
}

// CheckPhoneFormToken reports whether t was minted for this device and
// purpose and has not expired at now.
func CheckPhoneFormToken(d prov.Device, purpose, t string, now time.Time) bool {
	exp, sig, ok := strings.Cut(t, ".")
	if !ok || d.ProvPassword == "" {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(n, 0)) || time.Unix(n, 0).Sub(now) > PhoneFormTTL {
		return false
	}
	return hmac.Equal([]byte(phoneMAC(d, phoneFormMsg(d, purpose, exp))), []byte(sig))
}

func phoneFormMsg(d prov.Device, purpose, exp string) string {
	return "hotdesk-phone-form:" + purpose + ":" + d.MAC + ":" + exp
}

func phoneMAC(d prov.Device, msg string) string { return prov.DeviceSignature(d, msg) }

// EMPath starts a Cisco MPP Extension Mobility fetch, em/<user>/<token>/<file>:
// the phone's Profile_Rule puts the user ID typed at the Sign in softkey
// ($MUID) and the token of the session its profile came with into the path,
// and answers the digest challenge with the typed user ID and password.
const EMPath = "em"
