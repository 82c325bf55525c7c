package provhttp

import (
	"strings"

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

// parseDigest parses an Authorization header into a in place (no
// allocation: it runs on every authenticated fetch); false for anything
// else, an answer without a URI, or an algorithm not offered.
func parseDigest(h string, a *digestserver.Answer) bool {
	if digestserver.ParseAnswer(h, a) != nil || a.URI == "" {
		return false
	}
	switch {
	case a.Algorithm == "":
		a.Algorithm = "MD5"
	case !strings.EqualFold(a.Algorithm, "MD5") && !strings.EqualFold(a.Algorithm, "SHA-256"):
		return false
	}
	return true
}

// answerKey identifies an answer for the replay guard: its nc, or for
// RFC 2069 phones that send none, its URI and response.
func (h *Handler) answerKey(a *digestserver.Answer) uint64 {
	if a.QOP != "" {
		return uint64(a.Nc)
	}
	return h.nonces.AnswerKey(a.URI + " " + strings.ToLower(a.Response))
}
