package prov

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// DeviceSignature signs msg with d's provisioning secret: only that phone
// (and hotdesk) can make it, which is what its page tokens and Extension
// Mobility tokens rest on.
func DeviceSignature(d Device, msg string) string {
	m := hmac.New(sha256.New, []byte(d.ProvPassword))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))[:24]
}

// EMNoToken is the token of a rule served without an Extension Mobility
// session: the next sign-in is a new login.
const EMNoToken = "new"

// EMToken binds the session sessID to the phone its profile was served to,
// signed with the device's provisioning secret: only that phone holds it,
// so a stale login it presents can be told from a new one (and nobody
// else can make one up).
func EMToken(d Device, sessID string) string {
	return sessID + "." + DeviceSignature(d, "hotdesk-em:"+d.MAC+":"+sessID)
}

// EMSessionOf returns the session an EM token was minted for on d.
func EMSessionOf(d Device, tok string) (string, bool) {
	id, _, ok := strings.Cut(tok, ".")
	if !ok || id == "" || d.ProvPassword == "" {
		return "", false
	}
	return id, hmac.Equal([]byte(EMToken(d, id)), []byte(tok))
}

// EMVendor: the vendors whose phones sign users in and out themselves
// through the profile rule (Cisco MPP Extension Mobility).
func EMVendor(vendor string) bool { return strings.EqualFold(vendor, "cisco") }
