package portal

import (
	"errors"
	"net/http"

	"hotdesk/prov"
)

// The admin's view of a user's mailbox: what it holds and whether a
// greeting is set, never the audio (that is the user's to hear), and the
// greeting's removal (say, one the user should not have uploaded),
// audited. Voicemail off answers 404.

// userVoicemailView is GET /api/v1/users/{username}/voicemail.
type userVoicemailView struct {
	Username string        `json:"username"`
	New      int           `json:"new"`
	Heard    int           `json:"heard"`
	Bytes    int64         `json:"bytes"`
	Greeting bool          `json:"greeting"`
	Messages []myVoicemail `json:"messages"`
}

func (a *api) userVoicemail(w http.ResponseWriter, r *http.Request, _ principal) {
	if a.d.Voicemails == nil {
		writeError(w, http.StatusNotFound, "voicemail is off", "")
		return
	}
	u, err := a.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ms, err := a.d.Voicemails.List(r.Context(), u.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := userVoicemailView{Username: u.Username, Greeting: a.d.Voicemails.HasGreeting(r.Context(), u.ID),
		Messages: []myVoicemail{}}
	for _, m := range ms {
		x := myVoicemail{ID: m.ID, From: m.From, DurationMS: m.Duration.Milliseconds(), Bytes: m.Size, Created: m.Created,
			Heard: !m.Heard.IsZero()}
		if x.Heard {
			at := m.Heard
			x.HeardAt = &at
			v.Heard++
		} else {
			v.New++
		}
		v.Bytes += m.Size
		v.Messages = append(v.Messages, x)
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *api) deleteUserGreeting(w http.ResponseWriter, r *http.Request, p principal) {
	if a.d.Voicemails == nil {
		writeError(w, http.StatusNotFound, "voicemail is off", "")
		return
	}
	u, err := a.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.d.Voicemails.DeleteGreeting(r.Context(), u.ID, p.actor()); err != nil {
		if errors.Is(err, prov.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no greeting", "")
			return
		}
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
