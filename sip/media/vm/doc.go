// Package vm is hotdesk's voicemail: a SIP user agent with a plain-RTP
// media endpoint (G.711 µ-law/A-law, RFC 3550 timing, RFC 4733 DTMF) that
// the proxy sends unanswered calls and the mailbox feature code to. A call
// to "deposit.<user>" plays the user's greeting and records a message to a
// WAV file in the data directory; a call to "listen.<user>" plays the
// user's messages, newest first, with DTMF 7 to delete and # (or 9) to
// keep and go on. A call to "park.<slot>" parks the call there until a
// second call to the slot picks it up (park.go); on a cluster the slot is
// claimed in the shared store first (Deps.Slots). Message metadata, greetings, budgets and message-waiting
// are the Mailbox's (prov), wired by daemon.
//
// Its SIP listener is meant for the proxy only (loopback); its RTP socket
// is on the media address the phones reach.
package vm
