package prov

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// PhonePagesPath is the login door for the phone's own browser, relative
// to the provisioning path prefix.
const PhonePagesPath = "hotdesk/phone"

// PhonePageToken signs the device's login-page link with its own
// provisioning secret, so a link cannot be made up for another handset.
func PhonePageToken(d Device) string {
	m := hmac.New(sha256.New, []byte(d.ProvPassword))
	m.Write([]byte("hotdesk-phone-pages:" + d.MAC))
	return hex.EncodeToString(m.Sum(nil))[:24]
}

// CheckPhonePageToken reports whether t is the device's link token.
func CheckPhonePageToken(d Device, t string) bool {
	return d.ProvPassword != "" && hmac.Equal([]byte(PhonePageToken(d)), []byte(t))
}
