package prov

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"hotdesk/prov/auth"
)

// LoginHA1s returns the digest HA1s kept for a user's login password (the
// native login door answers the phone's digest with them). Digest needs a
// fast hash of the password, so each password gets its own random realm:
// the HA1s are salted, a table built for one user or one realm is no use
// for another, and two users with one password do not share an HA1. The
// realm is kept with them under "realm".
func LoginHA1s(user, password string) map[string]string {
	realm := LoginRealm + "-" + auth.RandomSecret(8)
	return map[string]string{
		"realm":   realm,
		"MD5":     auth.DigestHA1("MD5", user, realm, password),
		"SHA-256": auth.DigestHA1("SHA-256", user, realm, password),
	}
}

// LoginRealmOf is the digest realm of u's login HA1s: their own, or the
// shared LoginRealm of HA1s kept before realms were per password (until
// the next password change); "" when u has none.
func LoginRealmOf(u User) string {
	if len(u.LoginHA1) == 0 {
		return ""
	}
	if r := u.LoginHA1["realm"]; r != "" {
		return r
	}
	return LoginRealm
}

// DefaultLoginSecret is the password a phone of site uses to log in u, the
// site's default user (a common-area profile on shared phones), by itself:
// it goes in the phone's configuration, so it is not u's own password but
// derived from u's password hash and the site. It changes with u's
// password, and cannot be computed without the database. "" when u has no
// password (then there is no default login).
func DefaultLoginSecret(u User, siteID int64) string {
	if u.PasswordHash == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(u.PasswordHash))
	m.Write([]byte("hotdesk default login:" + strconv.FormatInt(siteID, 10) + ":" + u.Username))
	return hex.EncodeToString(m.Sum(nil)[:10])
}
