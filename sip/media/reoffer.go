package media

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// Renegotiation of a bridged call (hold and resume, RFC 3264 §8.4): a new
// offer from either side is turned into the bridge's offer to the other
// side with the same direction, and that side's answer into the answer to
// the first, with its direction. The bridge itself always relays both ways
// (pion sees sendrecv only, so its sender never pauses): directions only
// tell the endpoints what to send, and a held party stops sending by
// itself.

// Direction attribute values.
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// Direction is the direction of an SDP's audio stream: its own attribute,
// else the session's, else sendrecv (RFC 4566 §6).
func Direction(body string) string {
	session, media, section := "", "", ""
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "m=") {
			if section == "audio" {
				break // the first audio stream is the call's
			}
			section = "other"
			if strings.HasPrefix(l, "m=audio") {
				section = "audio"
			}
			continue
		}
		switch l {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
			switch section {
			case "":
				session = l[2:]
			case "audio":
				media = l[2:]
			}
		}
	}
	switch {
	case media != "":
		return media
	case session != "":
		return session
	}
	return SendRecv
}

// WithDirection sets every stream's direction attribute (RFC 4566 §6):
// direction lines are dropped and one is put as the last line of each
// media section (attributes come last there).
func WithDirection(body, dir string) string {
	var out []string
	inMedia := false
	for _, l := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		switch l {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive", "":
			continue
		}
		if strings.HasPrefix(l, "m=") {
			if inMedia {
				out = append(out, "a="+dir)
			}
			inMedia = true
		}
		out = append(out, l)
	}
	if inMedia {
		out = append(out, "a="+dir)
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

// BrowserReoffer takes the browser's new offer in an answered call and
// returns the plain offer for the phone, with the same direction.
func (s *Session) BrowserReoffer(ctx context.Context, offer string) (string, error) {
	dir := Direction(offer)
	s.neg.Lock()
	defer s.neg.Unlock()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer,
		SDP: WithDirection(offer, SendRecv)}); err != nil {
		return "", fmt.Errorf("media: browser re-offer: %w", err)
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("media: answer: %w", err)
	}
	local, err := s.gather(ctx, ans)
	if err != nil {
		return "", err
	}
	s.pending = local
	return s.plainSDPWith(dir, true), nil
}

// PhoneReanswered takes the phone's answer to BrowserReoffer's offer and
// returns the browser's answer, with the phone's direction.
func (s *Session) PhoneReanswered(answer string) (string, error) {
	if err := s.phoneMoved(answer); err != nil {
		return "", err
	}
	s.neg.Lock()
	defer s.neg.Unlock()
	if s.pending == "" {
		return "", fmt.Errorf("media: answer without an offer")
	}
	out := WithDirection(s.pending, Direction(answer))
	s.pending = ""
	return out, nil
}

// PhoneReoffer takes the phone's new offer in an answered call and returns
// the WebRTC offer for the browser, with the same direction. The phone's
// address follows the offer (a transfer brings another phone).
func (s *Session) PhoneReoffer(ctx context.Context, offer string) (string, error) {
	if err := s.phoneMoved(offer); err != nil {
		return "", err
	}
	s.neg.Lock()
	defer s.neg.Unlock()
	o, err := s.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("media: re-offer: %w", err)
	}
	local, err := s.gather(ctx, o)
	if err != nil {
		return "", err
	}
	return WithDirection(local, Direction(offer)), nil
}

// BrowserReanswered takes the browser's answer to PhoneReoffer's offer and
// returns the plain answer for the phone, with the browser's direction.
func (s *Session) BrowserReanswered(answer string) (string, error) {
	s.neg.Lock()
	defer s.neg.Unlock()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer,
		SDP: WithDirection(answer, SendRecv)}); err != nil {
		return "", fmt.Errorf("media: browser re-answer: %w", err)
	}
	return s.plainSDPWith(Direction(answer), false), nil
}

// Rollback forgets an offer the other side refused, so the next one
// starts from the last agreed state.
func (s *Session) Rollback() {
	s.neg.Lock()
	defer s.neg.Unlock()
	s.pending = ""
	if s.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := s.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			s.b.log.Debug("media: rollback", "err", err)
		}
	}
}

// phoneMoved takes the phone's RTP address from its new description; a
// hold with the connection address 0.0.0.0 (RFC 2543 style) or port 0
// keeps the one known.
func (s *Session) phoneMoved(body string) error {
	a, pt, err := plainPeer(body)
	if err != nil {
		return err
	}
	s.phonePT.Store(uint32(pt))
	if !a.Addr().IsUnspecified() && a.Port() != 0 {
		s.peer.Describe(a)
	}
	return nil
}
