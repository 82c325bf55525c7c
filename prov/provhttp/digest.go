package provhttp

import (
	"strings"

	"github.com/icholy/digest"

	"hotdesk/sip/digestserver"
)

// nonceSource is what provisioning nonces are bound to: nothing more than
// this server, as before the nonces were shared with the registrar (a
// phone's HTTP fetches may come through NAT pools or proxies).
const nonceSource = "HTTP"

// maxTrackedAnswers bounds the replay guard's memory (about 60 bytes an
// answer); maxUsesPerNonce bounds one user's answers with one nonce: a
// phone fetching more files than that with one nonce is asked to take a
// new one.
const (
	maxTrackedAnswers = 1_000_000
	maxUsesPerNonce   = 1024
)

// parseDigest parses an Authorization header; nil for anything else, an
// answer without a URI, or an algorithm not offered.
func parseDigest(h string) *digest.Credentials {
	c, err := digestserver.Parse(h)
	if err != nil || c.URI == "" {
		return nil
	}
	switch {
	case c.Algorithm == "":
		c.Algorithm = "MD5"
	case !strings.EqualFold(c.Algorithm, "MD5") && !strings.EqualFold(c.Algorithm, "SHA-256"):
		return nil
	}
	return c
}

// answerKey identifies an answer for the replay guard: its nc, or for
// RFC 2069 phones that send none, its URI and response.
func (h *Handler) answerKey(c *digest.Credentials) uint64 {
	if c.QOP != "" {
		return uint64(c.Nc)
	}
	return h.nonces.AnswerKey(c.URI + " " + strings.ToLower(c.Response))
}
