// Package media is hotdesk's media bridge between WebRTC browsers (the
// portal's softphone: ICE, DTLS-SRTP) and plain-RTP endpoints (desk phones,
// the trunk), built on github.com/pion/webrtc/v4.
//
// A Session has one PeerConnection towards the browser and one UDP socket
// towards the phone. The browser speaks G.711 µ-law (PCMU); so does a
// phone that offers it, and RTP payloads are passed through: only SSRC,
// payload type and the SRTP protection change. A phone that speaks only
// A-law (PCMA) is transcoded sample by sample (sip/media/g711). Opus is
// not offered to the browser, which then picks PCMU from its own list
// (every browser offers it).
//
// A new offer in an answered call (hold, resume) is renegotiated on both
// sides with its direction mirrored (reoffer.go).
//
// The proxy (package sip) owns the signalling: it hands a session the
// browser's or the phone's offer and rewrites the other side's SDP; the
// bridge never speaks SIP.
package media
