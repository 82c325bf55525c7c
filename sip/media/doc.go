// Package media is hotdesk's media bridge between WebRTC browsers (the
// portal's softphone: ICE, DTLS-SRTP) and plain-RTP endpoints (desk phones,
// the trunk), built on github.com/pion/webrtc/v4.
//
// A Session has one PeerConnection towards the browser and one UDP socket
// towards the phone. Both sides speak G.711 µ-law (PCMU), so RTP payloads
// are passed through without transcoding: only SSRC, payload type and the
// SRTP protection change. Opus is not offered to the browser, which then
// picks PCMU from its own list (every browser offers it).
//
// The proxy (package sip) owns the signalling: it hands a session the
// browser's or the phone's offer and rewrites the other side's SDP; the
// bridge never speaks SIP.
package media
