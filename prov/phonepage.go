package prov

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
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
func PhonePageToken(d Device) string {
	return phoneMAC(d, "hotdesk-phone-pages:"+d.MAC)
}

// CheckPhonePageToken reports whether t is the device's link token.
func CheckPhonePageToken(d Device, t string) bool {
	return d.ProvPassword != "" && hmac.Equal([]byte(PhonePageToken(d)), []byte(t))
}

// PhoneFormToken is a token for one form (purpose) of one device's page,
// valid until now+PhoneFormTTL: "<expiry unix seconds>.<signature>".
func PhoneFormToken(d Device, purpose string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(PhoneFormTTL).Unix(), 10)
	return exp + "." + phoneMAC(d, phoneFormMsg(d, purpose, exp))
}

// CheckPhoneFormToken reports whether t was minted for this device and
// purpose and has not expired at now.
func CheckPhoneFormToken(d Device, purpose, t string, now time.Time) bool {
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

func phoneFormMsg(d Device, purpose, exp string) string {
	return "hotdesk-phone-form:" + purpose + ":" + d.MAC + ":" + exp
}

func phoneMAC(d Device, msg string) string {
	m := hmac.New(sha256.New, []byte(d.ProvPassword))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))[:24]
}

// EMPath starts a Cisco MPP Extension Mobility fetch, em/<user>/<token>/<file>:
// the phone's Profile_Rule puts the user ID typed at the Sign in softkey
// ($MUID) and the token of the session its profile came with into the path,
// and answers the digest challenge with the typed user ID and password.
const EMPath = "em"

// EMNoToken is the token of a rule served without an Extension Mobility
// session: the next sign-in is a new login.
const EMNoToken = "new"

// EMToken binds the session sessID to the phone its profile was served to,
// signed with the device's provisioning secret: only that phone holds it,
// so a stale login it presents can be told from a new one (and nobody
// else can make one up).
func EMToken(d Device, sessID string) string {
	return sessID + "." + phoneMAC(d, "hotdesk-em:"+d.MAC+":"+sessID)
}

// EMSessionOf returns the session an EM token was minted for on d.
func EMSessionOf(d Device, tok string) (string, bool) {
	id, _, ok := strings.Cut(tok, ".")
	if !ok || id == "" || d.ProvPassword == "" {
		return "", false
	}
	return id, hmac.Equal([]byte(EMToken(d, id)), []byte(tok))
}

// emVendor: the vendors whose phones sign users in and out themselves
// through the profile rule (Cisco MPP Extension Mobility).
func emVendor(vendor string) bool { return strings.EqualFold(vendor, "cisco") }
